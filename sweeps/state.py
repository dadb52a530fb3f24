"""The sweep directory: sweep.json (what was submitted where) and the run markers.

Layout::

    SWEEP_DIR/sweep.json            runs (dir, launcher, array, task index, command) + submissions (job ids)
    SWEEP_DIR/slurm/ARRAY.sbatch    the last script submitted per array; Slurm's own output files
    SWEEP_DIR/runs/NAME/            the run's output dir (train.output_dir), plus:
        job.log                     the launcher's output, appended by every attempt
        RUNNING / DONE / FAILED     markers written by the batch script (or by --local)

sweep.json is read by ``launch/sweep.py --status`` and by ``launch/report.py`` (labels, baseline).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from eval_hooks.layout import DONE, JOB_LOG, SWEEP_JSON
from sweeps.plan import ArrayJob
from sweeps.spec import Sweep, run_dir


def load_state(sweep_dir: Path) -> dict | None:
    """sweep.json of ``sweep_dir``, or None when the sweep was never submitted or run there."""
    path = Path(sweep_dir) / SWEEP_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); delete it to start the sweep's bookkeeping afresh") from exc


def new_state(sweep: Sweep, arrays: list[ArrayJob], sweep_dir: Path, sets: list[str], python: str) -> dict:
    """The runs section of sweep.json (refreshed at every submission; submissions are kept)."""
    runs = {}
    for array in arrays:
        for i, run in enumerate(array.runs):
            runs[run.name] = {
                "dir": str(run_dir(sweep_dir, run.name)),
                "label": run.label,
                "launcher": run.launcher_name,
                "recipe": run.recipe,
                "compare_to": run.compare_to or (sweep.baseline if sweep.baseline != run.name else None),
                "after": run.after,
                "array": array.name,
                "index": i,
                "command": [python, run.launcher, *run.args(sweep_dir)],
            }
    return {"sweep": sweep.name, "description": sweep.description, "spec": str(sweep.source),
            "sweep_dir": str(sweep_dir), "baseline": sweep.baseline, "sets": list(sets),
            "order": [r.name for r in sweep.runs], "runs": runs, "submissions": []}


def merge_state(old: dict | None, fresh: dict) -> dict:
    """Fresh runs section, old submissions and each run's last job id kept."""
    if old:
        fresh["submissions"] = old.get("submissions", [])
        for name, info in fresh["runs"].items():
            prev = old.get("runs", {}).get(name, {})
            for key in ("job", "mode"):
                if key in prev:
                    info[key] = prev[key]
    return fresh


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def is_done(rdir: Path) -> bool:
    return (Path(rdir) / DONE).exists()


def read_marker(rdir: Path, name: str) -> dict | None:
    path = Path(rdir) / name
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text() or "{}")
    except json.JSONDecodeError:
        data = {"raw": path.read_text().strip()}
    return data if isinstance(data, dict) else {"raw": data}


def log_tail(rdir: Path, lines: int = 15) -> list[str]:
    """The last lines of a run's job.log ([] when there is none)."""
    path = Path(rdir) / JOB_LOG
    if not path.is_file():
        return []
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        size = f.tell()
        f.seek(max(0, size - 64 * 1024))
        text = f.read().decode("utf-8", errors="replace")
    return text.splitlines()[-lines:]
