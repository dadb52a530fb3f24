"""Eval hook: its cost in the quickstart (recipes/sft/quickstart_sft.yaml, unchanged: 300 steps of 32, a
200-record held-out benchmark evaluated at steps 0, 100, 200 and 300).

Ours: ``launch/sft.py recipe=quickstart_sft`` as a user runs it (the mid-training benchmark hook on).
Baseline: the same command with ``eval.bench=null`` (no hook). The two runs of a pair run at the same time
(one core each, one torch thread each, as the recipe sets), so both see the same machine. The figure is the
CPU seconds of each run's process (its own rusage) with the hook over without; the hook's own accounting
(``bench/eval_seconds_total`` and ``bench/eval_time_share`` in metrics.jsonl) and the wall times are kept in
``extra``. One pair by default (each run takes a minute or more); ``--repeats 10`` gives two.
``--quick`` runs a scaled-down quickstart (10 steps, evaluations every 5 on 20 records) that checks the
plumbing, not the quickstart's figure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Context, Figure, known_answer, pair_figure

REPO = Path(__file__).resolve().parents[1]
WEIGHT_TOLERANCE = 1e-6
"""Absolute (project choice): two single-threaded CPU runs of the same seeded work end with the same weights;
an evaluation that changed training (RNG, model state, data position) moves them by far more."""
QUICK = ["mix.budget.value=320", "eval.every_steps=5", "eval.max_samples_per_leaf=20"]


def start_quickstart(data_root: Path, out: Path, quick: bool, hook: bool) -> tuple[subprocess.Popen, float]:
    args = ["recipe=quickstart_sft", f"data.root={data_root}", f"train.output_dir={out}", "train.report_to=[jsonl]"]
    if quick:
        args += QUICK
    if not hook:
        args += ["eval.bench=null", "data.decontaminate_against=[qs_distance_heldout]"]  # the same check as ours
    with open(out.with_suffix(".log"), "w") as fh:
        proc = subprocess.Popen([sys.executable, str(REPO / "launch" / "sft.py"), *args], cwd=REPO, stdout=fh,
                                stderr=subprocess.STDOUT)
    return proc, time.perf_counter()


def finish_quickstart(proc: subprocess.Popen, started: float, out: Path, hook: bool) -> dict:
    """Wait for the run; its CPU seconds (this child's own rusage, via wait4), wall time and the hook's accounting."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    if proc.returncode:
        raise RuntimeError(f"the quickstart exited {proc.returncode}: {out.with_suffix('.log').read_text()[-2000:]}")
    summary = json.loads((out / "train_summary.json").read_text())
    result = {"cpu_s": usage.ru_utime + usage.ru_stime, "train_s": float(summary["seconds"]), "wall_s": wall,
              "run_dir": out}
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
    weight_diffs: list[float] = []
    extras: dict[str, list] = {"hook_eval_s": [], "hook_share": [], "evaluations": [], "train_s_with": [],
                               "train_s_without": [], "wall_s_with": [], "wall_s_without": []}
    ours, base = [], []
    pairs = max(1, ctx.repeats // 5)
    for i in range(pairs):  # the two runs of a pair at the same time, one core each: same machine state
        with_dir, without_dir = ctx.workdir / f"with_hook_{i}", ctx.workdir / f"without_hook_{i}"
        a = start_quickstart(data_root, with_dir, ctx.quick, hook=True)
        b = start_quickstart(data_root, without_dir, ctx.quick, hook=False)
        try:
            ra = finish_quickstart(*a, with_dir, hook=True)
            rb = finish_quickstart(*b, without_dir, hook=False)
        finally:  # on an error, do not leave the other run behind
            for proc, _ in (a, b):
                if proc.returncode is None:
                    proc.kill()
        ours.append(ra["cpu_s"])
        base.append(rb["cpu_s"])
        weight_diffs.append(max_weight_difference(ra["run_dir"], rb["run_dir"]))
        for key in ("hook_eval_s", "hook_share", "evaluations"):
            extras[key].append(ra[key])
        for key, r in (("with", ra), ("without", rb)):
            extras[f"train_s_{key}"].append(r["train_s"])
            extras[f"wall_s_{key}"].append(r["wall_s"])
        ctx.log(f"pair {i + 1}/{pairs}: with the hook {ra['cpu_s']:.1f} CPU s (hook: {ra['hook_eval_s']:.1f} s, "
                f"{ra['hook_share']:.1%} by its own account), without {rb['cpu_s']:.1f} CPU s")
    what = ("CPU seconds of the whole quickstart SFT process with the mid-training benchmark hook (ratio - 1 = the "
            "hook's cost relative to the run, start-up included)." if not ctx.quick else
            "CPU seconds of a scaled-down quickstart (smoke run: 10 steps, evaluations every 5 on 20 records), "
            "with the hook over without.")
    return [pair_figure("quickstart_cpu_s", what, "CPU s", ours, base,
                        "the same run with eval.bench=null (no hook)", better="lower",
                        target=None if ctx.quick else "ratio <= 1.10 (hook under 10% of the run)",
                        check=None if ctx.quick else (lambda _o, _b, r: r["median"] <= 1.10),
                        notes=f"{pairs} pair(s) of runs, the two of a pair run at the same time; extra holds the "
                              f"hook's own accounting (eval seconds and its share of the run) and the runs' "
                              f"training-loop and process wall times.",
                        extra=extras, checks=[known_answer(
                            "same_final_weights", "largest absolute difference between the final weights of the "
                            "run with the hook and without (the hook must not change training: 0)",
                            weight_diffs, [0.0] * len(weight_diffs), abs_tol=WEIGHT_TOLERANCE)])]


def max_weight_difference(a: Path, b: Path) -> float:
    """The largest absolute difference between two saved models' tensors (inf when their tensors differ)."""
    from safetensors.torch import load_file

    wa, wb = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    if wa.keys() != wb.keys() or any(wa[k].shape != wb[k].shape for k in wa):
        return float("inf")
    return max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
