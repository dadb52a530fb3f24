"""The mid-training benchmark end to end, on the tiny model and the engine's stand-in bench records.

One short SFT run (the real trainer, eval.every_steps=2) on the bench records themselves, so that
the model learns answer-shaped replies and leaf scores differ; then the offline evaluation of the
final checkpoint, in process and through launch/evaluate.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from eval_hooks.io import read_json
from tests.fixtures_eval import leaf_scores_of, recompute_root

pytestmark = pytest.mark.slow  # trains with the evaluation hook attached; make test runs it, make test-quick does not

MAX_STEPS = 8
EVAL = ["eval.max_samples_per_leaf=3", "eval.max_new_tokens=24", "eval.batch_size=16", "eval.every_steps=2"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def bench_file(tmp_path_factory) -> str:
    """Engine stand-in bench: 8 records per bench task (72 records over 9 leaves)."""
    from data_mix.engine import write_task

    out = tmp_path_factory.mktemp("bench")
    summary = write_task("bench_all", 8, 0, out, fmt="bench", progress=False)
    return summary["files"]["bench"]


def _recipe(bench: str, out: Path, extra=()):
    from train.recipe import load_recipe

    return load_recipe(None, [f"eval.bench={bench}", f"train.output_dir={out}", *EVAL,
                              f"train.max_steps={MAX_STEPS}", "train.per_device_batch_size=8", "train.save_steps=0",
                              "train.logging_steps=2", "optim.lr=3e-3", "optim.warmup_ratio=0", "train.num_threads=1",
                              "train.report_to=[jsonl,tensorboard]", *extra])


@pytest.fixture(scope="module")
def sft_run(bench_file, tmp_path_factory) -> Path:
    """SFT on the bench records with their answers; the hook evaluates at steps 0, 2, 4, 6, 8."""
    import torch

    from data_mix.readers import read_source
    from eval_hooks.subset import bench_source
    from train import sft
    from train.data import ListSource

    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("sft")
    recipe = _recipe(bench_file, out)
    samples = [dataclasses.replace(s, messages=s.messages + [
        {"role": "assistant", "content": [{"type": "text", "text": str(s.answer)}]}])
        for s in read_source(bench_source(bench_file, recipe.data), recipe.data)]
    assert sft.run(recipe, [], source=ListSource(samples, epochs=4)) == 0
    return out


def test_hook_logs_bench_metrics_every_2_steps_and_writes_step_folders(sft_run):
    rows = [json.loads(line) for line in (sft_run / "metrics.jsonl").read_text().splitlines()]
    bench_rows = [r for r in rows if "bench/overall" in r]
    assert [r["step"] for r in bench_rows] == [0, 2, 4, 6, 8]
    for r in bench_rows:
        for key in ("bench/L1", "bench/L1/Geometry", "bench/L1/Geometry/Distance", "bench/L4",
                    "bench/eval_seconds", "bench/eval_time_share"):
            assert key in r, key
        assert 0.0 <= r["bench/overall"] <= 1.0 and 0.0 < r["bench/eval_time_share"] <= 1.0
        summary = read_json(sft_run / "eval" / f"step_{r['step']}" / "summary.json")
        assert summary["overall"] == pytest.approx(r["bench/overall"])
        assert summary["num_samples"] == 27 and summary["mode"] == "renormalize"
        preds = (sft_run / "eval" / f"step_{r['step']}" / "predictions.jsonl").read_text().splitlines()
        assert len(preds) == 27
        assert set(json.loads(preds[0])) >= {"id", "response", "score", "details", "leaf"}
    assert not list((sft_run / "eval").rglob("*.tmp*"))  # atomic writes leave nothing behind
    timing = read_json(sft_run / "eval" / "timing.json")
    assert [e["step"] for e in timing["evaluations"]] == [0, 2, 4, 6, 8]
    assert 0 < timing["eval_time_share"] < 1
    # tensorboard got them too (through the trainer's loggers, prefixed train/ as every Trainer log)
    assert list((sft_run / "tensorboard").rglob("events.out.tfevents*"))


def test_training_moved_the_scores(sft_run):
    first = read_json(sft_run / "eval" / "step_0" / "summary.json")
    last = read_json(sft_run / "eval" / f"step_{MAX_STEPS}" / "summary.json")
    assert last["overall"] > first["overall"]
    leaves = leaf_scores_of(last)
    assert len(leaves) == 9 and len(set(leaves.values())) > 1  # the tree checks below are not all-zero
    page = (sft_run / "report.html").read_text()  # the SFT run's page, written at its end (docs/PAGES.md)
    assert all(f'<section id="{s}">' in page for s in ("run", "curves", "tree", "samples", "rollouts"))
    assert page.count('"leaf": "L1/Geometry/Distance"') == 3  # the last evaluation's records are on it


def test_offline_evaluation_of_the_checkpoint_equals_the_hook(sft_run, bench_file, tmp_path):
    from eval_hooks.offline import run
    from train.model_loading import load_model_and_processor

    out = tmp_path / "offline"
    recipe = _recipe(bench_file, out, [f"model.name_or_path={sft_run}"])
    assert run(recipe, [], loader=load_model_and_processor) == 0
    hook_dir = sft_run / "eval" / f"step_{MAX_STEPS}"
    hook = [json.loads(x) for x in (hook_dir / "predictions.jsonl").read_text().splitlines()]
    offline = [json.loads(x) for x in (out / "eval" / "final" / "predictions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["response"], r["score"]) for r in offline] == [(r["id"], r["response"], r["score"]) for r in hook]
    a, b = read_json(hook_dir / "summary.json"), read_json(out / "eval" / "final" / "summary.json")
    assert b["step"] == "final" and b["tree"] == a["tree"]
    # renormalize: the root is the weighted mean of the summary's own leaves, recomputed by hand
    assert b["overall"] == pytest.approx(recompute_root(leaf_scores_of(b), "renormalize"), abs=1e-12)


def test_launch_evaluate_reference_mode_and_compare(sft_run, bench_file, tmp_path):
    out = tmp_path / "ref"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [sys.executable, "launch/evaluate.py", f"model.name_or_path={sft_run}", f"eval.bench={bench_file}",
            f"train.output_dir={out}", "eval.mode=reference", "train.num_threads=1", *EVAL]
    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = read_json(out / "eval" / "final" / "summary.json")
    assert summary["mode"] == "reference"
    assert (out / "report.html").is_file() and f"run page: {out / 'report.html'}" in proc.stdout
    leaves = leaf_scores_of(summary)
    root = recompute_root(leaves, "reference")
    assert summary["overall"] == pytest.approx(root, abs=1e-12)
    # every unsampled leaf counts 0: the reference root is below the renormalized one here
    renorm = read_json(sft_run / "eval" / f"step_{MAX_STEPS}" / "summary.json")
    assert summary["overall"] < renorm["overall"]
    assert leaves == pytest.approx(leaf_scores_of(renorm))
    # the printed tree: scores x100 to one decimal
    overall_line = next(line for line in proc.stdout.splitlines() if line.startswith("SpatialTree (overall)"))
    assert overall_line.split()[2] == f"{100 * summary['overall']:.1f}"
    assert "L4 Agentic Competence" in proc.stdout

    from eval_hooks.offline import compare_main

    assert compare_main([str(sft_run / "eval" / "step_0"), str(sft_run / "eval" / f"step_{MAX_STEPS}")]) == 0


def test_bad_bench_is_a_clear_error_before_any_model_is_loaded(tmp_path, capsys):
    from eval_hooks.offline import run
    from train.recipe import load_recipe

    def no_model(*a, **k):
        raise AssertionError("the model must not be loaded for a bench that does not exist")

    recipe = load_recipe(None, [f"eval.bench={tmp_path}/nothing.jsonl", f"train.output_dir={tmp_path}"])
    assert run(recipe, [], loader=no_model) == 2
    err = capsys.readouterr().err
    assert f"{tmp_path}/nothing.jsonl" in err and "spatialtree_bench" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    recipe = load_recipe(None, [f"eval.bench={empty}", f"train.output_dir={tmp_path}"])
    assert run(recipe, [], loader=no_model) == 2
    assert "no record" in capsys.readouterr().err


@pytest.mark.dist
def test_two_ranks_shard_the_subset_and_gather_the_same_results(sft_run, bench_file, tmp_path):
    """torchrun --nproc_per_node 2 launch/evaluate.py: each rank generates half, rank 0 writes everything."""
    out = tmp_path / "dist"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    repo = Path(__file__).resolve().parents[1]
    args = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
            "launch/evaluate.py", f"model.name_or_path={sft_run}", f"eval.bench={bench_file}",
            f"train.output_dir={out}", "train.num_threads=1", *EVAL]
    proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    dist = [json.loads(x) for x in (out / "eval" / "final" / "predictions.jsonl").read_text().splitlines()]
    hook = [json.loads(x) for x in
            (sft_run / "eval" / f"step_{MAX_STEPS}" / "predictions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["response"], r["score"]) for r in dist] == [(r["id"], r["response"], r["score"]) for r in hook]
    summary = read_json(out / "eval" / "final" / "summary.json")
    assert summary["world_size"] == 2 and summary["num_samples"] == 27
    assert proc.stdout.count("SpatialTree (overall)") == 1  # the tree is printed by rank 0 only


@pytest.mark.dist
def test_zero3_generation_on_partitioned_weights_between_training_steps(bench_file, tmp_path):
    """A Trainer under DeepSpeed ZeRO-3 (2 ranks): evaluations at steps 0, 1, 2 interleave with training;
    step 0 (the untouched tiny model) gives the replies of a plain single-process evaluation."""
    import torch

    from eval_hooks.evaluator import BenchEvaluator
    from train.model_loading import load_model_and_processor
    from train.recipe import load_recipe

    out = tmp_path / "z3"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"}
    repo = Path(__file__).resolve().parents[1]
    args = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(_free_port()),
            "tests/eval_zero3_child.py", str(out), bench_file, "false"]  # layer-wise gathering + synced_gpus
    proc = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-4000:]
    for step in (0, 1, 2):
        summary = read_json(out / "eval" / f"step_{step}" / "summary.json")
        assert summary["world_size"] == 2 and summary["num_samples"] == 18

    torch.set_num_threads(1)
    recipe = load_recipe(None, [f"eval.bench={bench_file}", "eval.max_samples_per_leaf=2", "eval.max_new_tokens=8"])
    model, processor = load_model_and_processor(recipe.model, "cpu")
    single = BenchEvaluator(recipe.eval, recipe.data).evaluate(model, processor, tmp_path / "single", step=0)
    zero3 = [json.loads(x) for x in (out / "eval" / "step_0" / "predictions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["response"]) for r in zero3] == [(r["id"], r["response"]) for r in single.records]


def test_sampled_passes_have_intervals_and_compare_pairs_them(sft_run, bench_file, tmp_path, capsys):
    """eval.repeats=2 with sampling: every record twice (seeds recorded), the tree's score is the mean over both
    passes, every scored node has ci95 around its score; --compare pairs the records of two evaluations."""
    from eval_hooks.offline import compare_main, run
    from eval_hooks.tree import aggregate_records
    from train.model_loading import load_model_and_processor

    out = tmp_path / "passes"
    recipe = _recipe(bench_file, out, [f"model.name_or_path={sft_run}", "eval.repeats=2", "eval.do_sample=true",
                                       "eval.temperature=1.5", "eval.generation_seed=7"])
    assert run(recipe, [], loader=load_model_and_processor) == 0
    preds = [json.loads(x) for x in (out / "eval/final/predictions.jsonl").read_text().splitlines()]
    summary = read_json(out / "eval/final/summary.json")
    n = summary["num_samples"]
    assert len(preds) == 2 * n and n == 27
    assert sorted({(p["repeat"], p["seed"]) for p in preds}) == [(0, 7), (1, 8)]
    assert summary["repeats"] == 2 and summary["pass_seeds"] == [7, 8]
    assert [p["response"] for p in preds[:n]] != [p["response"] for p in preds[n:]]  # two different draws
    per_pass = [aggregate_records([p for p in preds if p["repeat"] == r], "renormalize").overall for r in (0, 1)]
    assert summary["overall"] == pytest.approx(sum(per_pass) / 2, abs=1e-12)

    def nodes(node):
        yield node
        for child in node.get("children", ()):
            yield from nodes(child)

    scored = [nd for nd in nodes(summary["tree"]) if nd["score"] is not None]
    assert len(scored) > 9
    for nd in scored:
        lo, hi = nd["ci95"]
        assert lo - 1e-9 <= nd["score"] <= hi + 1e-9 and nd["n"] == nd["count"]
    assert summary["tree"]["ci95"][0] < summary["tree"]["ci95"][1]

    assert compare_main([str(sft_run / "eval" / "step_0"), str(sft_run / "eval" / f"step_{MAX_STEPS}")]) == 0
    printed = capsys.readouterr().out.split("\nA = ")[-1]  # the comparison (run() printed its tree first)
    print(printed)
    assert "paired 95% CI" in printed and "smallest resolvable delta (overall)" in printed
    for line in printed.splitlines():
        if "[" not in line:
            continue
        delta = float(line.split("[")[0].split()[-1])
        lo, hi = (float(v) for v in line.split("[")[1].split("]")[0].split(","))
        assert lo - 0.05 <= delta <= hi + 0.05 and -100 <= lo <= hi <= 100, line
        assert line.rstrip().endswith("*") == (lo > 0 or hi < 0), line  # * exactly when the interval excludes 0
