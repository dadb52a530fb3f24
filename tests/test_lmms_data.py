"""The local copy of lmms-eval's spatialtreebench task data (eval_hooks/lmms_data.py, eval.lmms_eval_data) and the
launcher's handling of it; lmms-eval itself runs in tests/test_lmms_eval_run.py (slow)."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from eval_hooks.lmms_data import CACHE_DIR, MEDIA_DIR, environment, main, write_task_copy
from tests.fixtures_eval import write_hand_bench

REPO = Path(__file__).resolve().parents[1]


def test_the_copy_loads_back_as_the_hub_dataset_with_the_hub_offline(tmp_path):
    """What lmms-eval's task does (api/task.py): load_dataset("LongfeiLi/SpatialTree-Bench") under HF_HOME, offline;
    the records come back unchanged and every media path resolves under HF_HOME/SpatialTreeBench."""
    bench = Path(write_hand_bench(tmp_path / "bench", copies=2))
    done = write_task_copy(bench, tmp_path / "hf")
    assert (done["records"], done["media_files"]) == (8, 8)
    env = {**os.environ, **environment(tmp_path / "hf")}
    env.pop("HF_DATASETS_CACHE", None)
    code = ("import datasets, json, os, sys; home = os.environ['HF_HOME']\n"
            "ds = datasets.load_dataset('LongfeiLi/SpatialTree-Bench', cache_dir=os.path.join(home, 'datasets'))\n"
            "rows = ds['test'].to_list()\n"
            "assert all(os.path.isfile(os.path.join(home, 'SpatialTreeBench', p)) for r in rows for p in r['image'])\n"
            "json.dump(rows, sys.stdout)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == [json.loads(x) for x in bench.read_text().splitlines()]
    assert (tmp_path / "hf" / MEDIA_DIR / "images" / "0_0.png").resolve() == (bench.parent / "images/0_0.png").resolve()
    again = write_task_copy(bench, tmp_path / "hf")  # rewriting replaces the copy, nothing else under HF_HOME
    assert again["records"] == 8 and (tmp_path / "hf" / CACHE_DIR / "dataset_info.json").is_file()


def test_a_missing_media_file_is_one_line_naming_the_row(tmp_path, capsys):
    bench = Path(write_hand_bench(tmp_path / "bench", copies=1))
    (bench.parent / "images" / "1_0.png").unlink()
    assert main([str(bench), str(tmp_path / "hf")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"eval_hooks.lmms_data: error: {bench}: row 1: media file images/1_0.png not found "
                   f"(looked at {bench.parent / 'images' / '1_0.png'})")
    assert main([str(tmp_path / "nowhere.jsonl"), str(tmp_path / "hf")]) == 2
    assert "no such bench file" in capsys.readouterr().err


def test_lmms_eval_gets_the_copy_through_its_environment(tmp_path):
    from eval_hooks.config import EvalConfig
    from eval_hooks.lmms import command_env

    with pytest.raises(FileNotFoundError, match="python -m eval_hooks.lmms_data BENCH"):
        command_env(EvalConfig(lmms_eval_tasks=["spatialtreebench"], lmms_eval_data=str(tmp_path / "none")))
    write_task_copy(write_hand_bench(tmp_path / "bench", copies=1), tmp_path / "hf")
    env = command_env(EvalConfig(lmms_eval_tasks=["spatialtreebench"], lmms_eval_data=str(tmp_path / "hf")))
    assert (env["HF_HOME"], env["HF_HUB_OFFLINE"], env["HF_DATASETS_OFFLINE"]) == (str(tmp_path / "hf"), "1", "1")
    assert command_env(EvalConfig(lmms_eval_tasks=["spatialtreebench"])).get("HF_HOME") == os.environ.get("HF_HOME")


def test_launch_evaluate_stops_before_the_model_when_the_copy_is_missing(tmp_path, capsys):
    from eval_hooks.offline import run
    from train.recipe import load_recipe

    bench = write_hand_bench(tmp_path / "bench", copies=1)
    recipe = load_recipe(None, [f"eval.bench={bench}", f"train.output_dir={tmp_path / 'out'}",
                                "eval.lmms_eval_tasks=[spatialtreebench]", f"eval.lmms_eval_data={tmp_path / 'none'}"])

    def loader(*_a, **_k):
        raise AssertionError("the model was loaded")

    assert run(recipe, [], loader=loader) == 2
    assert capsys.readouterr().err.strip().startswith(
        f"launch/evaluate.py: error: eval.lmms_eval_data={tmp_path / 'none'}: no local task data there")


@pytest.mark.parametrize("writes_results", [False, True])
def test_lmms_eval_exiting_0_without_results_is_a_failure(tmp_path, capsys, writes_results):
    """lmms-eval catches its own errors and exits 0; launch/evaluate.py looks for its results file."""
    from eval_hooks.offline import _run_lmms
    from train.recipe import load_recipe

    ck = tmp_path / "ck"
    ck.mkdir()
    (ck / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    fake = tmp_path / "fake_python"
    out = tmp_path / "run" / "eval" / "lmms_eval" / "final"
    body = f"mkdir -p {out}/m && echo {{}} > {out}/m/1_results.json\n" if writes_results else ""
    fake.write_text(f"#!/bin/sh\n{body}exit 0\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    recipe = load_recipe(None, [f"model.name_or_path={ck}", f"train.output_dir={tmp_path / 'run'}",
                                "eval.lmms_eval_tasks=[spatialtreebench]", f"eval.lmms_eval_python={fake}"])
    assert _run_lmms(recipe) == (0 if writes_results else 1)
    assert ("lmms-eval wrote no results" in capsys.readouterr().err) is not writes_results
