"""Decontamination: training rows that are evaluation records are found (media contents + question text) and
named with the bench record, by the library, launch/decontam.py, and the SFT / GRPO runs before the model loads.
Real files: the engine's small stand-in bench, and a training file where contaminated rows are planted."""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_data import write_image, write_jsonl, write_registry
from fixtures_engine import standin_small

from data_mix.decontam import ContaminationError, check, normalize, scan
from data_mix.readers import read_source
from train.recipe import load_recipe

REPO = Path(__file__).resolve().parents[1]


def _row(rid: str, images: list[str], question: str) -> dict:
    tags = "".join("<image>\n" for _ in images)
    return {"id": rid, "image": images, "conversations": [{"from": "human", "value": tags + question},
                                                          {"from": "gpt", "value": "A"}]}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """A registry with the stand-in bench, the stand-in distance data (clean) and a training file whose rows 2
    and 5 are bench records (copied image files under new names, the question reworded only in case,
    spacing and punctuation, inside a longer prompt); the other rows are near misses."""
    standin = standin_small(tmp_path_factory).root
    root = tmp_path_factory.mktemp("planted")
    reg = write_registry(root / "reg.yaml", {
        "planted": {"format": "llava", "files": [str(root / "planted.jsonl")], "media_root": str(root / "img")},
        "spatial_distance": {"format": "llava", "files": [str(standin / "spatial/distance.jsonl")],
                             "media_root": str(standin / "spatial/images")},
        "spatialtree_bench": {"format": "bench", "files": [str(standin / "spatialtree_bench/test.jsonl")],
                              "media_root": str(standin / "spatialtree_bench")}})
    recipe = load_recipe(None, [f"data.root={root}", f"data.registry={reg}"])
    bench = list(read_source("spatialtree_bench", recipe.data))
    single = next(s for s in bench if len(s.images) == 1)
    pair = next(s for s in bench if len(s.images) == 2)
    (root / "img").mkdir()
    shutil.copy(single.images[0], root / "img/renamed_single.png")
    for k, path in enumerate(pair.images):
        shutil.copy(path, root / f"img/renamed_pair{k}.png")
    write_image(root / "img/other.png", color=(1, 2, 3))
    q1 = single.meta["question"]
    q2 = pair.meta["question"]
    leak1 = "Look carefully.  " + q1.upper().replace("?", " ?!") + "\nA. left\nB. right"
    write_jsonl(root / "planted.jsonl", [
        _row("same-image-other-question", ["renamed_single.png"], "What colour is the floor?"),
        _row("leak-single", ["renamed_single.png"], leak1),                                   # row 2
        _row("same-question-other-image", ["other.png"], q1),
        _row("one-of-two-images", ["renamed_pair0.png"], q2),
        _row("leak-pair", ["renamed_pair0.png", "renamed_pair1.png"], q2 + " Answer with a letter."),  # row 5
        _row("clean", ["other.png"], "How many cubes are there?"),
    ])
    recipe_yaml = root / "leaky.yaml"
    recipe_yaml.write_text(yaml_recipe(root, reg))
    return {"root": root, "reg": reg, "recipe": recipe_yaml, "single": single, "pair": pair}


def yaml_recipe(root: Path, reg: Path) -> str:
    return (f"model: {{name_or_path: tiny-qwen2.5-vl}}\n"
            f"data: {{root: {root}, registry: {reg}}}\n"
            "mix: {unit: samples, groups: {g: {sources: [planted, spatial_distance]}}, budget: {unit: epochs, value: 1}}\n"
            "train: {max_steps: 2, per_device_batch_size: 2, num_threads: 1}\n"
            "eval: {bench: spatialtree_bench}\n")


def _where(sample) -> str:
    return f"{sample.file}, row {sample.row + 1}"


def test_normalize_ignores_case_spacing_punctuation_and_media_tags():
    assert normalize("<image>\nWhich  object is CLOSER to the camera?!") == "which object is closer to the camera"
    assert normalize("Ｗｈｉｃｈ_one") == "which one"  # NFKC: full-width letters


def test_planted_rows_are_found_and_named_with_their_bench_records(planted):
    recipe = load_recipe(str(planted["recipe"]))
    report = scan(["planted", "spatial_distance"], ["spatialtree_bench"], recipe.data, progress=False)
    planted_file = str(planted["root"] / "planted.jsonl")
    assert report.n_hits == 2 and report.rows_checked == 6 + 60 and report.bench_records == 216
    assert [(h.train, h.bench) for h in report.hits] == [(f"{planted_file}, row 2", _where(planted["single"])),
                                                        (f"{planted_file}, row 5", _where(planted["pair"]))]
    assert report.hits[0].question.startswith("Which object is closer")
    assert "2 contaminated training row(s)" in report.summary() and "216 records of spatialtree_bench" in report.summary()


def test_check_errors_warns_or_skips_as_the_recipe_says(planted, caplog):
    recipe = load_recipe(str(planted["recipe"]))
    assert recipe.data.decontaminate == "error" and recipe.data.decontaminate_against == ["spatialtree_bench"]
    with pytest.raises(ContaminationError) as err:
        check(recipe.data, recipe.mix, progress=False)
    msg = str(err.value)
    assert f"{planted['root'] / 'planted.jsonl'}, row 2 (planted) is {_where(planted['single'])} (spatialtree_bench)" in msg
    assert "row 5" in msg and "data.decontaminate=warn" in msg
    recipe.data.decontaminate = "warn"
    with caplog.at_level(logging.WARNING, logger="data_mix.decontam"):
        assert check(recipe.data, recipe.mix, progress=False).n_hits == 2
    assert any("training anyway" in r.getMessage() and "row 5" in r.getMessage() for r in caplog.records)
    recipe.data.decontaminate = "off"
    assert check(recipe.data, recipe.mix, progress=False) is None
    clean = load_recipe(str(planted["recipe"]), ["mix.groups.g.sources=[spatial_distance]"])
    assert check(clean.data, clean.mix, progress=False).n_hits == 0


def test_cli_lists_the_rows_and_exits_1(planted):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "launch/decontam.py", f"recipe={planted['recipe']}", "--no-progress"]
    out = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "decontamination: 2 contaminated training row(s)" in out.stdout
    assert f"{planted['root'] / 'planted.jsonl'}, row 5 (planted) = {_where(planted['pair'])}" in out.stdout
    out = subprocess.run([*cmd, "mix.groups.g.sources=[spatial_distance]", "--json"], cwd=REPO, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and json.loads(out.stdout)["n_hits"] == 0 and json.loads(out.stdout)["rows_checked"] == 60
    out = subprocess.run([*cmd, "data.decontaminate_against=[nope]"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "evaluation set 'nope' is neither a source of the registry" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["sft", "grpo"])
def test_training_stops_before_the_model_loads(planted, launcher, capsys, tmp_path):
    recipe = load_recipe(str(planted["recipe"]), [f"train.output_dir={tmp_path / 'run'}"])
    if launcher == "sft":
        from train.sft import run_cli

        code = run_cli(recipe, [])
    else:
        from train.grpo import run

        code = run(recipe, [])
    out = capsys.readouterr()
    assert code == 1
    assert f"launch/{launcher}.py: error: 2 training row(s) are evaluation records" in out.err
    assert f"{planted['root'] / 'planted.jsonl'}, row 2 (planted)" in out.err
    assert "trainable parameters" not in out.out and not (tmp_path / "run" / "model.safetensors").exists()


# ----------------------------------------------------------------------------- near copies, fail closed

@pytest.fixture(scope="module")
def paraphrased(planted):
    """A training file whose row 2 is a bench record reworded, its image re-encoded as JPEG (quality 70)."""
    from PIL import Image

    root, single = planted["root"], planted["single"]
    Image.open(single.images[0]).convert("RGB").save(root / "img/reencoded.jpg", "JPEG", quality=70)
    reworded = ("Take a look at the scene, then say: " + single.meta["question"].lower().rstrip("?")
                + "? Answer with the letter.")
    write_jsonl(root / "paraphrased.jsonl", [_row("clean", ["other.png"], "How many cubes are there?"),
                                             _row("reworded-leak", ["reencoded.jpg"], reworded)])
    reg = write_registry(root / "reg_para.yaml", {
        "paraphrased": {"format": "llava", "files": [str(root / "paraphrased.jsonl")], "media_root": str(root / "img")},
        "spatialtree_bench": {"format": "bench", "files": [str(Path(single.file))],
                              "media_root": str(Path(single.file).parent)}})
    recipe = root / "para.yaml"
    recipe.write_text(yaml_recipe(root, reg).replace("[planted, spatial_distance]", "[paraphrased]"))
    return recipe


def test_a_reworded_bench_question_on_a_reencoded_image_is_found_and_stops_sft(planted, paraphrased, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "launch/decontam.py", f"recipe={paraphrased}", "--no-progress"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr
    assert f"{planted['root'] / 'paraphrased.jsonl'}, row 2 (paraphrased) = {_where(planted['single'])}" in out.stdout
    assert "1 contaminated training row(s)" in out.stdout
    broken = paraphrased.with_name("broken.yaml")  # every bench row unreadable (wrong media root): exit 2, not clean
    broken.write_text(paraphrased.read_text().replace("reg_para.yaml", "reg_broken.yaml"))
    root = planted["root"]
    write_registry(root / "reg_broken.yaml", {
        "paraphrased": {"format": "llava", "files": [str(root / "paraphrased.jsonl")], "media_root": str(root / "img")},
        "spatialtree_bench": {"format": "bench", "files": [planted["single"].file], "media_root": str(root)}})
    bad = subprocess.run([sys.executable, "launch/decontam.py", f"recipe={broken}", "--no-progress"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "216 row(s) of the evaluation set cannot be read" in bad.stderr, bad.stderr
    out = subprocess.run([sys.executable, "launch/sft.py", f"recipe={paraphrased}", f"train.output_dir={tmp_path}"],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stderr[-2000:]
    err = out.stderr.strip().splitlines()
    assert err[-1].startswith("launch/sft.py: error: 1 training row(s) are evaluation records") and "row 2" in err[-1]
    assert "Traceback" not in out.stderr and "trainable parameters" not in out.stdout


def test_an_evaluation_set_that_cannot_be_read_stops_the_run_before_the_model_exit_2(planted, tmp_path, capsys,
                                                                                    monkeypatch, caplog):
    from data_mix import decontam
    from train.sft import run_cli

    bad = tmp_path / "gone" / "test.jsonl"
    unreadable = tmp_path / "dir.jsonl"
    unreadable.mkdir()  # exists, cannot be read as a file
    for against, names in ((f"[{bad}]", str(bad)), (f"[{unreadable}]", "dir.jsonl"), ("[]", "no evaluation set")):
        recipe = load_recipe(str(planted["recipe"]), [f"train.output_dir={tmp_path / 'run'}",
                                                      f"data.decontaminate_against={against}"])
        assert run_cli(recipe, []) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("launch/sft.py: error: decontamination: ") and names in err and "\n" not in err, err
        assert "data.decontaminate=warn" in err and not (tmp_path / "run" / "run_info.json").exists()
    # warn: said, and the run goes on with what it could check (here nothing)
    recipe = load_recipe(str(planted["recipe"]), [f"data.decontaminate_against=[{bad}]", "data.decontaminate=warn"])
    with caplog.at_level(logging.WARNING, logger="data_mix.decontam"):
        report = check(recipe.data, recipe.mix, progress=False)
    assert report.not_checked and str(bad) in report.not_checked and any("training anyway" in r.getMessage()
                                                                         for r in caplog.records)
    record = decontam.run_record(recipe.data, report)
    assert record["mode"] == "warn" and record["checked"] is False and str(bad) in record["reason"]

    # off: no evaluation set is read at all
    def no_reading(*args, **kwargs):
        raise AssertionError("data.decontaminate=off read an evaluation set")

    monkeypatch.setattr(decontam, "resolve_bench", no_reading)
    monkeypatch.setattr(decontam, "SourceRows", no_reading)
    recipe = load_recipe(str(planted["recipe"]), [f"data.decontaminate_against=[{bad}]", "data.decontaminate=off"])
    assert check(recipe.data, recipe.mix, progress=False) is None
    assert decontam.run_record(recipe.data, None) == {"mode": "off", "checked": False,
                                                      "reason": "data.decontaminate=off"}


def test_run_record_says_what_was_checked(planted):
    from data_mix.decontam import run_record

    clean = load_recipe(str(planted["recipe"]), ["mix.groups.g.sources=[spatial_distance]"])
    record = run_record(clean.data, check(clean.data, clean.mix, progress=False))
    assert record["mode"] == "error" and record["checked"] is True and record["hits"] == 0
    assert record["rows_checked"] == 60 and record["bench_records"] == 216 and record["sources"] == ["spatial_distance"]
    assert record["files"] == [str(Path(planted["single"].file))]
    assert record["thresholds"] == {"containment": 0.75, "hamming": 6}
