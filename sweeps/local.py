"""Run a sweep's runs one after another on this machine, without Slurm (``launch/sweep.py --local``).

Same run directories, markers and job.log as on Slurm, so --status and the report work the same.
Runs go in dependency order; a run whose dependency failed is not started (reported as failed).
One process per run by default; ``procs > 1`` uses ``torchrun --standalone``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from eval_hooks.io import atomic_write_json
from eval_hooks.layout import DONE, FAILED, JOB_LOG, RUNNING, SWEEP_JSON
from sweeps.plan import plan
from sweeps.spec import REPO_ROOT, Sweep
from sweeps.state import (
    is_done,
    load_state,
    log_tail,
    merge_state,
    new_state,
    now,
)
from sweeps.stream import stream


def _command(python: str, launcher: str, args: list[str], procs: int) -> list[str]:
    if procs > 1:
        return [python, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", launcher, *args]
    return [python, launcher, *args]


def run_local(sweep: Sweep, sweep_dir: Path, sets: list[str], procs: int = 1,
              echo: Callable[[str], None] = print) -> int:
    """Run every unfinished run; return 0 when all are done, 1 otherwise."""
    sweep_dir = Path(sweep_dir).resolve()
    python = sys.executable
    arrays = plan(sweep)
    state = merge_state(load_state(sweep_dir), new_state(sweep, arrays, sweep_dir, sets, python))
    for info in state["runs"].values():
        info["mode"] = "local"
        info.pop("job", None)
    state["submissions"].append({"time": now(), "mode": "local", "sets": list(sets)})
    atomic_write_json(sweep_dir / SWEEP_JSON, state)

    order = [r for a in arrays for r in a.runs]
    failed: set[str] = set()
    for k, run in enumerate(order, 1):
        rdir = Path(state["runs"][run.name]["dir"])
        if is_done(rdir):
            echo(f"[{k}/{len(order)}] {run.name}: done already, skipped")
            continue
        blocked = [d for d in run.after if d in failed or not is_done(state["runs"][d]["dir"])]
        rdir.mkdir(parents=True, exist_ok=True)
        (rdir / FAILED).unlink(missing_ok=True)
        if blocked:
            failed.add(run.name)
            (rdir / FAILED).write_text(json.dumps({"exit_code": None, "signal": "", "blocked_by": blocked,
                                                   "time": now()}) + "\n")
            echo(f"[{k}/{len(order)}] {run.name}: not started, needs {', '.join(blocked)}")
            continue
        cmd = _command(python, run.launcher, run.args(sweep_dir), procs)
        env = dict(os.environ, SPATIALTREE_RUN_DIR=str(rdir), SPATIALTREE_SWEEP_DIR=str(sweep_dir),
                   **run.slurm.env)
        (rdir / RUNNING).write_text(json.dumps({"job": None, "attempt": 0, "host": os.uname().nodename,
                                                "start": now(), "pid": os.getpid()}) + "\n")
        echo(f"[{k}/{len(order)}] {run.name}: {run.launcher_name} ... (log: {rdir / JOB_LOG})")
        start = time.monotonic()
        with open(rdir / JOB_LOG, "a") as log:
            log.write(f"=== local run {run.name}: {' '.join(cmd)} ({now()})\n")
            log.flush()
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            try:  # job.log gets everything; the terminal each line with the job's prefix (sweeps/stream.py)
                stream(proc.stdout, log, echo, f"[{k}/{len(order)} {run.name}]")
                rc = proc.wait()
            except KeyboardInterrupt:
                proc.wait()
                rc = 130
        (rdir / RUNNING).unlink(missing_ok=True)
        secs = time.monotonic() - start
        if rc == 0:
            (rdir / DONE).write_text(now() + "\n")
            echo(f"    done in {secs:.1f} s")
            continue
        failed.add(run.name)
        (rdir / FAILED).write_text(json.dumps({"exit_code": rc, "signal": "", "time": now()}) + "\n")
        echo(f"    FAILED (exit {rc}) after {secs:.1f} s; last lines of {rdir / JOB_LOG}:")
        for line in log_tail(rdir, 15):
            echo(f"    | {line}")
        if rc == 130:
            echo("interrupted: stopping the sweep")
            return 1
    return 1 if failed else 0
