"""Malformed recipes and overrides through the real launcher (``launch/sft.py`` in a subprocess): exit code 2,
one line naming the file / line / key and the closest valid names, and nothing written anywhere.

tests/test_recipe.py covers the loader in-process (unknown key, unknown recipe, wrong type of an override, bad
choice, base cycle); this covers what reaches a user's terminal: YAML syntax errors with their line, mistakes
inside recipe files and their bases, override syntax, unknown flags, and that a previous run in the same
output directory is left untouched."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_reliability import LAUNCH_SFT, REPO, child_env


def launch(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(LAUNCH_SFT), *args], cwd=REPO, capture_output=True, text=True,
                          env=child_env(), timeout=120)


def recipe(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


CASES = {
    # name: (recipe files {stem: text}, extra args, the recipe to run, what stderr must say)
    "yaml_syntax": ({"r": "train:\n  max_steps: 3\n  output_dir: [runs/x\noptim:\n  lr: 1.0e-5\n"}, [], "r",
                    ["r.yaml", "not valid YAML", "line 3"]),
    "unknown_key_in_file": ({"r": "train:\n  max_step: 3\n"}, [], "r",
                            ["unknown key 'train.max_step'", "did you mean 'train.max_steps'"]),
    "wrong_type_in_file": ({"r": "train:\n  max_steps: many\n"}, [], "r",
                           ["'train.max_steps'", "'many'", "Integer"]),
    "section_as_scalar": ({"r": "model:\n  freeze: true\n"}, [], "r", ["'model.freeze' is a section"]),
    "not_a_mapping": ({"r": "- train\n- optim\n"}, [], "r", ["r.yaml", "mapping at the top level"]),
    "cycle": ({"a": "bases: [{dir}/b.yaml]\n", "b": "bases: [{dir}/a.yaml]\n"}, [], "a",
              ["bases form a cycle", "a.yaml -> ", "b.yaml -> "]),
    "missing_base": ({"r": "bases: [sft_bsae]\n"}, [], "r", ["unknown recipe 'sft_bsae'", "did you mean 'sft_base'"]),
    "override_not_yaml": ({}, ["optim.lr=[1,"], None, ["cannot parse overrides", "optim.lr=[1,"]),
    "override_without_value": ({}, ["train.max_steps"], None, ["expected key=value", "'train.max_steps'"]),
    "override_unknown_key": ({}, ["mix.budget.valeu=2"], None, ["unknown key 'mix.budget.valeu'", "'mix.budget.value'"]),
    "override_bad_choice": ({}, ["data.on_bad_sample=skipp"], None, ["data.on_bad_sample='skipp'", "did you mean 'skip'"]),
    "unknown_flag": ({}, ["--resume"], None, ["unknown option '--resume'", "--print-config"]),
    "unknown_recipe": ({}, ["recipe=dist_sise_corr"], None, ["unknown recipe 'dist_sise_corr'", "'dist_size_corr'"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_recipe_exits_2_with_one_clear_line_and_writes_nothing(tmp_path, case):
    files, extra, run, expected = CASES[case]
    for stem, text in files.items():
        recipe(tmp_path, stem, text.format(dir=tmp_path))
    out = tmp_path / "out"
    args = ([f"recipe={tmp_path / (run + '.yaml')}"] if run else []) + [*extra, f"train.output_dir={out}"]
    res = launch(*args)
    assert res.returncode == 2, (res.returncode, res.stderr[-2000:])
    assert "Traceback" not in res.stderr, res.stderr
    assert res.stderr.startswith("launch/sft.py: error: "), res.stderr
    for text in expected:
        assert text in res.stderr, (text, res.stderr)
    assert not out.exists()  # checked before anything is created


def test_a_bad_override_leaves_a_previous_run_untouched(tmp_path):
    """A typo on the command line of a resumed run must not touch the run directory it points at."""
    out = tmp_path / "run"
    ckpt = out / "checkpoint-2"
    ckpt.mkdir(parents=True)
    (ckpt / "COMPLETE").write_text("{}")
    (out / "recipe.yaml").write_text("name: earlier\n")
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    res = launch(f"train.output_dir={out}", "train.resume=auto", "train.max_steps=ten")
    assert res.returncode == 2 and "'train.max_steps'" in res.stderr
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before
    assert (out / "recipe.yaml").read_text() == "name: earlier\n"
