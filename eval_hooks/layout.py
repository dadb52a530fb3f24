"""The names of the files in a run directory and in a sweep directory, in one place.

A run directory (``train.output_dir``)::

    RUN_DIR/metrics.jsonl                 every logged metric, one JSON object per line (train/, bench/ ...)
    RUN_DIR/train_summary.json            written at the end of training (steps, seconds, skips ...)
    RUN_DIR/mix_plan.json                 an SFT run's data-mix plan and token budget, written at start
    RUN_DIR/eval/step_N/summary.json      the benchmark hook's evaluation at step N (eval_hooks/callback.py)
    RUN_DIR/eval/final/summary.json       the offline evaluation (launch/evaluate.py)

A sweep directory (``launch/sweep.py``, default ``runs/sweeps/NAME``)::

    SWEEP_DIR/sweep.json                  what was submitted where (runs, labels, baseline, job ids)
    SWEEP_DIR/runs/NAME/                  each run's directory, plus job.log and a RUNNING / DONE / FAILED marker

Written by train (metrics, train summary), eval_hooks (eval/) and sweeps (sweep.json, runs/, markers); read by
the sweep report (eval_hooks/report.py) and ``launch/sweep.py --status``. It lives here, in the lowest package
that writes or reads these files, so every writer and reader imports the same names.
"""

from __future__ import annotations

from pathlib import Path

# ---------------------------------------------------------------------------- run directory
METRICS_JSONL = "metrics.jsonl"
TRAIN_SUMMARY = "train_summary.json"
MIX_PLAN = "mix_plan.json"
"""data_mix.report.plan_record of the SFT run's mix: the sweep report says which token budget a table used."""
EVAL_DIR = "eval"
FINAL = "final"
"""The name of the offline evaluation's folder under eval/ (the hook's are ``step_N``)."""
SUMMARY_JSON = "summary.json"

# ---------------------------------------------------------------------------- sweep directory
SWEEP_JSON = "sweep.json"
RUNS_DIR = "runs"
JOB_LOG = "job.log"
DONE, FAILED, RUNNING = "DONE", "FAILED", "RUNNING"
"""Markers in a sweep run's directory, written by its batch script (or ``--local``)."""


def eval_dir(run_dir: str | Path, step: int | str) -> Path:
    """``RUN_DIR/eval/step_<N>``, or ``RUN_DIR/eval/final`` for ``step="final"``."""
    return Path(run_dir) / EVAL_DIR / (step if isinstance(step, str) else f"step_{step}")


def latest_summary(run_dir: str | Path) -> Path | None:
    """The run's last evaluation: eval/final/summary.json, else the eval/step_N/summary.json with the largest N."""
    run_dir = Path(run_dir)
    final = eval_dir(run_dir, FINAL) / SUMMARY_JSON
    if final.is_file():
        return final
    steps = sorted(run_dir.glob(f"{EVAL_DIR}/step_*/{SUMMARY_JSON}"),
                   key=lambda p: int(p.parent.name[5:]) if p.parent.name[5:].isdigit() else -1)
    return steps[-1] if steps else None


def sweep_run_dir(sweep_dir: str | Path, name: str) -> Path:
    """``SWEEP_DIR/runs/NAME``: a sweep run's output directory."""
    return Path(sweep_dir) / RUNS_DIR / name
