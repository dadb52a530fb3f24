"""verl and the project agree on every metricfunc at every level (L1-L4).

A stand-in export (tests/fixtures_verl.py: one bench record per metricfunc, 1-3 images of varied sizes, one
image larger than ``data.image_max_pixels``) goes through the project's verl dry run, then through verl 0.9.1's
own code in .venv-verl: RLHFDataset + collate_fn with the tiny model's processor (saved by this environment's
transformers 5.23, loaded by verl's 5.10), whose prompt token counts must equal the project's; and verl's
NaiveRewardManager, whose scores of right and wrong answers must equal the TRL reward functions' here.
gpteval is graded by a stub judge on localhost that both environments call.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from fixtures_grpo import grpo_recipe
from fixtures_judge import StubJudge
from fixtures_verl import (
    METRIC_CASES,
    METRICFUNCS,
    completions_for,
    score_both_ways,
    strict_grade,
    verl_env,
    write_metric_source,
)

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def judge():
    with StubJudge(strict_grade) as stub:
        yield stub


@pytest.fixture(scope="module")
def exported(tmp_path_factory, judge):
    from train.grpo import verl_backend
    from train.grpo.verl_export import read_parquet

    root = tmp_path_factory.mktemp("verl_parity")
    src = write_metric_source(root / "data")
    recipe = grpo_recipe(root, src, name="auto_think_all_metrics", overrides=[  # every metric: not MCQ only
        f"train.output_dir={root / 'run'}", "grpo.backend=verl", "mix.groups.rl.sources=[every_metric]",
        "reward.length_unit=words", "data.image_max_pixels=20000", f"reward.judge.base_url={judge.url}",
        "reward.judge.model=stub-judge"])
    assert verl_backend.run(recipe, ["--dry-run"]) == 0
    out = root / "run" / "verl"
    return recipe, out, read_parquet(out / "train.parquet")


@pytest.fixture(scope="module")
def verl_python() -> Path:
    return verl_env()


def test_the_export_has_every_metricfunc_and_every_level(exported):
    from rewards.metrics import METRICS

    _, _, rows = exported
    assert set(METRICFUNCS) == set(METRICS)  # a metric added to rewards/ must be added to these cases too
    assert len(rows) == len(METRIC_CASES)
    assert {r["extra_info"]["metricfunc"] for r in rows} == set(METRICFUNCS)
    assert {r["extra_info"]["level"] for r in rows} == {"L1", "L2", "L3", "L4"}
    by_id = {r["extra_info"]["id"]: r for r in rows}
    # 333x251 > data.image_max_pixels=20000: the project fits it to 162x122, its processor rounds to 112x168.
    # qwen-vl-utils would round the original down to 112x140 (20 image tokens, not 24) if the export passed
    # min/max pixels; the export passes the project's size instead.
    big = by_id["m10"]["images"][0]
    assert (big["resized_height"], big["resized_width"]) == (112, 168)
    assert all(im["resized_height"] % 28 == 0 and im["resized_width"] % 28 == 0 for r in rows for im in r["images"])


def test_verls_rlhfdataset_reads_the_export_with_the_projects_token_counts(exported, verl_python, tmp_path):
    _, out, rows = exported
    proc = subprocess.run([str(verl_python), str(REPO / "scripts" / "verl" / "check_dataset.py"),
                           str(out / "grpo_verl.yaml"), str(tmp_path / "dataset.json")],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    report = json.loads((tmp_path / "dataset.json").read_text())
    # The processor this environment saved loads under verl's transformers, with its video processor
    # (torchvision) and without falling back to a tokenizer.
    assert report["processor"] == "Qwen2_5_VLProcessor" and report["transformers"].startswith("5.10.")
    assert report["video_processor"] == "Qwen2VLVideoProcessor"
    assert report["rows"] == report["dataset_len"] == len(rows)
    assert sum(b["size"] for b in report["batches"]) == len(rows)
    assert {"raw_prompt", "dummy_tensor", "index", "extra_info", "reward_model"} <= set(report["batches"][0]["keys"])
    by_index = {r["extra_info"]["index"]: r for r in rows}
    for sample in report["samples"]:
        row = by_index[sample["index"]]
        assert sample["prompt_tokens"] == row["extra_info"]["prompt_tokens"], (row["extra_info"]["id"], sample)
        assert sample["metricfunc"] == row["extra_info"]["metricfunc"]
        assert sample["ground_truth"] == row["reward_model"]["ground_truth"]
        # verl's typed parts: one image part per image, in the exported order, then the text
        assert sample["parts"] == [["image"] * len(row["images"]) + ["text"]]
        # the images reach verl's processor at the project's size: grid = size / patch 14
        assert sample["image_grid_thw"] == [[1, im["resized_height"] // 14, im["resized_width"] // 14]
                                            for im in row["images"]]
        assert sample["image_tokens"] == sum(h * w // 4 for _, h, w in sample["image_grid_thw"])
    assert len({s["prompt_tokens"] for s in report["samples"]}) >= 8  # the counts differ: not one constant
    # verl's own over-long filter, one token below the longest prompt, drops exactly the longest
    assert report["boundary"]["kept"] == report["boundary"]["expected"] == len(rows) - 1


def test_verls_reward_manager_scores_every_metric_like_the_trl_path(exported, verl_python, judge, tmp_path):
    recipe, out, rows = exported
    items = completions_for(rows)
    calls = judge.calls
    verl_scores, columns, per_func, totals = score_both_ways(verl_python, recipe, out, rows, items, tmp_path)
    assert judge.calls > calls  # verl's process asked the stub judge for the gpteval rows
    by_index = {r["extra_info"]["index"]: r for r in rows}
    accuracy = {}
    for i, (item, theirs) in enumerate(zip(items, verl_scores)):
        metric = columns["metricfunc"][i]
        assert theirs["score"] == pytest.approx(totals[i], abs=1e-6), (metric, item, theirs, totals[i])
        for k, name in enumerate(("accuracy", "format", "length", "reasoning")):
            assert theirs[name] == pytest.approx(per_func[k][i] or 0.0, abs=1e-6), (metric, item, name)
        accuracy.setdefault(item["index"], {}).setdefault(item["right"], []).append(theirs["accuracy"])
    for index, acc in accuracy.items():
        metric = by_index[index]["extra_info"]["metricfunc"]
        right_value = 0.8 if metric == "gpteval" else 1.0  # the stub judge's grade for a right answer
        assert acc[True] == [pytest.approx(right_value)] * 2, (metric, acc)
        assert max(acc[False]) < min(acc[True]) - 0.3, (metric, acc)  # a wrong answer is clearly worse
    assert len({round(t, 6) for t in totals}) >= 10  # many distinct totals: not a comparison of constants
