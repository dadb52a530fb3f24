"""Eval hook: its cost in the quickstart (recipes/sft/quickstart_sft.yaml, unchanged: 300 steps of 32, a
200-record held-out benchmark evaluated at steps 0, 100, 200 and 300).

Ours: ``launch/sft.py recipe=quickstart_sft`` as a user runs it (the mid-training benchmark hook on).
Baseline: the same command with ``eval.bench=null`` (no hook). The figure is the training time of the run
(``train_summary.json`` seconds: the training loop, process start-up excluded) with the hook over without;
the hook's own accounting (``bench/eval_seconds_total`` and ``bench/eval_time_share`` in metrics.jsonl) is
kept in ``extra``. One pair by default (each run takes a minute or more); ``--repeats 10`` gives two.
``--quick`` runs a scaled-down quickstart (20 steps, evaluations every 10 on 50 records) that checks the
plumbing, not the quickstart's figure.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Context, Figure, compare_many, pair_figure

REPO = Path(__file__).resolve().parents[1]
QUICK = ["mix.budget.value=640", "eval.every_steps=10", "eval.max_samples_per_leaf=50"]


def quickstart(data_root: Path, out: Path, quick: bool, hook: bool) -> dict:
    args = ["recipe=quickstart_sft", f"data.root={data_root}", f"train.output_dir={out}", "train.report_to=[jsonl]"]
    if quick:
        args += QUICK
    if not hook:
        args.append("eval.bench=null")
    log = out.with_suffix(".log")
    t = time.perf_counter()
    with open(log, "w") as fh:
        proc = subprocess.run([sys.executable, str(REPO / "launch" / "sft.py"), *args], cwd=REPO, stdout=fh,
                              stderr=subprocess.STDOUT)
    wall = time.perf_counter() - t
    if proc.returncode:
        raise RuntimeError(f"the quickstart exited {proc.returncode}: {log.read_text()[-2000:]}")
    summary = json.loads((out / "train_summary.json").read_text())
    result = {"train_s": float(summary["seconds"]), "wall_s": wall}
    if hook:
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        evals = [r for r in rows if "bench/eval_seconds_total" in r]
        if not evals:
            raise RuntimeError(f"{out}/metrics.jsonl has no bench/eval_seconds_total: did the hook run?")
        result["hook_eval_s"] = float(evals[-1]["bench/eval_seconds_total"])
        result["hook_share"] = float(evals[-1]["bench/eval_time_share"])
        result["evaluations"] = len(evals)
    return result


def run(ctx: Context) -> list[Figure]:
    data_root = ctx.workdir / "quickstart_data"
    made = subprocess.run([sys.executable, "-m", "train.quickstart_data", str(data_root)], cwd=REPO,
                          capture_output=True, text=True)
    if made.returncode:
        raise RuntimeError(f"python -m train.quickstart_data failed ({made.returncode}): {made.stderr[-1500:]}")
    counter = {"n": 0}
    extras: dict[str, list] = {"hook_eval_s": [], "hook_share": [], "evaluations": [], "wall_with_s": [],
                               "wall_without_s": []}

    def out_dir(kind: str) -> Path:
        counter["n"] += 1
        return ctx.workdir / f"{kind}_{counter['n']}"

    def ours() -> dict:
        r = quickstart(data_root, out_dir("with_hook"), ctx.quick, hook=True)
        for key in ("hook_eval_s", "hook_share", "evaluations"):
            extras[key].append(r[key])
        extras["wall_with_s"].append(r["wall_s"])
        return {"train_s": r["train_s"]}

    def baseline() -> dict:
        r = quickstart(data_root, out_dir("without_hook"), ctx.quick, hook=False)
        extras["wall_without_s"].append(r["wall_s"])
        return {"train_s": r["train_s"]}

    pairs = max(1, ctx.repeats // 5)
    a, b = compare_many(ours, baseline, pairs, 0, ctx.log)
    what = ("training-loop seconds of the quickstart SFT run with the mid-training benchmark hook (ratio - 1 = "
            "the hook's share of the run)." if not ctx.quick else
            "training-loop seconds of a scaled-down quickstart (smoke run: 20 steps, evaluations every 10 on 50 "
            "records), with the hook over without.")
    return [pair_figure("quickstart_train_s", what, "s", a["train_s"], b["train_s"],
                        "the same run with eval.bench=null (no hook)", better="lower",
                        target=None if ctx.quick else "ratio <= 1.10 (hook under 10% of the run)",
                        check=None if ctx.quick else (lambda _o, _b, r: r["median"] <= 1.10),
                        notes=f"{pairs} pair(s) of runs; extra holds the hook's own accounting "
                              f"(eval seconds and share of the run it reports) and process wall times.",
                        extra=extras)]
