"""``python launch/data_report.py ... --report --json``: the lead's checks, on fixture data laid out like the stand-ins."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_data import llava_row, make_standin_like, write_image, write_jsonl, write_registry
from fixtures_engine import standin_small

pytestmark = pytest.mark.slow  # draws the shipped recipes' mixes over stand-in data; make test runs it, make test-quick does not

REPO = Path(__file__).resolve().parents[1]
REGISTRY = REPO / "recipes" / "data" / "registry.yaml"
DATA_REPORT = REPO / "launch" / "data_report.py"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, str(DATA_REPORT), *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    sizes = {"llava_onevision_si": 300, "llava_next_interleave": 100, "llava_next_interleave_3d": 60,
             "llava_video": 60}
    return make_standin_like(tmp_path_factory.mktemp("standin"), REGISTRY, sizes, default_rows=20)


def _report(*args: str) -> dict:
    out = run_cli(*args, "--report", "--json", "--tokenizer=none")
    assert out.returncode == 0, out.stderr
    assert "drawing the mix" in out.stderr  # progress on stderr, JSON alone on stdout
    return json.loads(out.stdout)


def test_ability_share_and_baseline_tokens(standin):
    dsc = _report("recipe=dist_size_corr", f"data.root={standin}")
    assert set(dsc) == {"groups", "sources", "levels", "budget", "warnings"} and dsc["warnings"] == []
    assert dsc["budget"]["label"] == "1 epoch(s) of group 'ability'" and dsc["budget"]["match_recipe"] is None
    assert set(dsc["groups"]) == {"general", "ability"}
    assert set(dsc["sources"][0]) == {"name", "group", "samples", "tokens"}
    assert dsc["groups"]["ability"]["share"] == pytest.approx(0.25, abs=0.01)
    assert dsc["levels"]["L1"] == dsc["groups"]["ability"]["samples"] == 60
    assert dsc["levels"]["untagged"] == dsc["groups"]["general"]["samples"]
    base = _report("recipe=baseline", f"data.root={standin}")
    total = sum(g["tokens"] for g in dsc["groups"].values())
    assert list(base["groups"]) == ["general"]
    assert base["groups"]["general"]["tokens"] == pytest.approx(total, rel=0.02)


@pytest.mark.parametrize("name", ["dist", "corr", "size", "dist_size_corr_motion", "all_spatial_75"])
def test_table2_recipes_report_on_standin_layout(standin, name):
    rep = _report(f"recipe={name}", f"data.root={standin}")
    assert rep["groups"]["ability"]["share"] == pytest.approx(0.25, abs=0.02)
    if name == "all_spatial_75":  # 75% of every spatial source, one epoch of that subset
        spatial = [s for s in rep["sources"] if s["group"] == "ability"]
        assert len(spatial) == 9 and all(s["samples"] == 15 for s in spatial)
        assert rep["levels"]["L4"] == 15 and rep["levels"]["L2"] == 15


def _bad_recipe(tmp_path: Path) -> Path:
    write_image(tmp_path / "img.png")
    rows = [llava_row(i, image="missing.png" if i == 3 else "img.png") for i in range(12)]
    write_jsonl(tmp_path / "rows.jsonl", rows)
    reg = write_registry(tmp_path / "reg.yaml", {"mine": {"format": "llava", "files": ["rows.jsonl"]}})
    recipe = tmp_path / "mine.yaml"
    recipe.write_text(f"data: {{root: {tmp_path}, registry: {reg}}}\n"
                      "mix: {unit: samples, groups: {general: {sources: [mine]}}, budget: {unit: epochs, value: 1}}\n")
    return recipe


def test_missing_image_exits_nonzero_naming_file_and_row(tmp_path):
    recipe = _bad_recipe(tmp_path)
    out = run_cli(f"recipe={recipe}", "--report", "--tokenizer=none")
    assert out.returncode == 1
    assert f"{tmp_path / 'rows.jsonl'}, row 4: missing_media" in out.stderr and "missing.png" in out.stderr
    out = run_cli(f"recipe={recipe}", "data.on_bad_sample=skip", "--report", "--json", "--tokenizer=none")
    assert out.returncode == 0, out.stderr
    assert "skipped 1 bad sample(s)" in out.stderr and "missing_media: 1" in out.stderr
    assert json.loads(out.stdout)["groups"]["general"]["samples"] == 11


def test_unknown_source_fails_at_load_with_closest_name(tmp_path, standin):
    out = run_cli("recipe=dist", f"data.root={standin}", "mix.groups.ability.sources=[spatial_distanse]",
                  "--report", "--tokenizer=none")
    assert out.returncode == 2 and "unknown source 'spatial_distanse'" in out.stderr
    assert "did you mean 'spatial_distance'" in out.stderr and "drawing" not in out.stderr


@pytest.fixture(scope="session")
def engine_standin(tmp_path_factory):
    return standin_small(tmp_path_factory)  # built once per test process, shared with the engine tests


def test_lead_checks_on_the_engine_standin(engine_standin, capsys):
    """The issue's checks on the engine's real --scale small stand-in."""
    main = runpy.run_path(str(DATA_REPORT))["main"]  # launch/ is scripts, not a package: load it by path

    reports = {}
    for name in ("dist_size_corr", "baseline", "all_spatial_75"):
        assert main([f"recipe={name}", f"data.root={engine_standin.root}", "--json", "--no-progress",
                     "--tokenizer=none"]) == 0
        reports[name] = json.loads(capsys.readouterr().out)
    dsc = reports["dist_size_corr"]
    assert dsc["groups"]["ability"]["share"] == pytest.approx(0.25, abs=0.01)
    total = sum(g["tokens"] for g in dsc["groups"].values())
    assert reports["baseline"]["groups"]["general"]["tokens"] == pytest.approx(total, rel=0.02)
    assert reports["all_spatial_75"]["groups"]["ability"]["share"] == pytest.approx(0.25, abs=0.01)
