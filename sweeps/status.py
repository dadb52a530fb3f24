"""Each run's state from its markers and the Slurm queue (squeue only: no accounting database needed).

Order of evidence: DONE marker -> done; the run's last job in squeue -> pending / running;
FAILED marker -> failed (exit code, signal); a RUNNING marker with no job in the queue -> failed (the
attempt was killed: time limit, node failure, SIGKILL); submitted but never started and gone from
the queue -> failed (cancelled, or its dependency failed); never submitted -> not-submitted.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from eval_hooks.layout import DONE, FAILED, RUNNING
from sweeps.state import load_state, log_tail, read_marker

STATES = ("pending", "running", "done", "failed", "not-submitted")
_RUNNING_SLURM = {"RUNNING", "COMPLETING", "CONFIGURING", "STAGE_OUT", "SIGNALING", "RESIZING"}


@dataclass
class RunStatus:
    name: str
    state: str
    """One of STATES."""
    job: str | None = None
    """Slurm task id ``JOB_TASK`` of the last submission (None for local or never submitted)."""
    detail: str = ""
    log: list[str] = field(default_factory=list)
    """Tail of job.log for failed runs."""


def squeue_states() -> dict[str, tuple[str, str]] | None:
    """``JOB_TASK`` -> (Slurm state, reason) for the user's jobs; None when squeue is not available."""
    if shutil.which("squeue") is None:
        return None
    try:
        out = subprocess.run(["squeue", "--me", "-h", "-r", "-o", "%i|%T|%r"], capture_output=True, text=True,
                             timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    states = {}
    for line in out.stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 3:
            states[parts[0]] = (parts[1], parts[2])
    return states


def run_status(name: str, info: dict, queue: dict[str, tuple[str, str]] | None, tail: int = 15) -> RunStatus:
    rdir = Path(info["dir"])
    job = info.get("job")
    if (rdir / DONE).exists():
        return RunStatus(name, "done", job, f"finished {(rdir / DONE).read_text().strip()}".strip())
    if job and queue is not None and job in queue:
        slurm_state, reason = queue[job]
        if slurm_state in _RUNNING_SLURM:
            running = read_marker(rdir, RUNNING) or {}
            attempt = running.get("attempt")
            return RunStatus(name, "running", job, f"{slurm_state.lower()}" + (f", attempt {attempt}"
                                                                                if attempt is not None else ""))
        return RunStatus(name, "pending", job, f"{slurm_state.lower()} ({reason})")
    failed = read_marker(rdir, FAILED)
    if failed is not None:
        sig = failed.get("signal") or ""
        detail = f"exit {failed.get('exit_code', '?')}" + (f" after SIG{sig}" if sig else "")
        return RunStatus(name, "failed", job, detail, log_tail(rdir, tail))
    if (rdir / RUNNING).exists():
        if info.get("mode") == "local" or (job and queue is None):
            return RunStatus(name, "running", job, "attempt under way (no queue to check)")
        return RunStatus(name, "failed", job, "attempt ended without writing DONE/FAILED (time limit, node failure "
                                              "or SIGKILL)", log_tail(rdir, tail))
    if job:
        if queue is None:
            return RunStatus(name, "pending", job, "submitted; squeue not available to check")
        return RunStatus(name, "failed", job, "not in the queue and never started (cancelled, or a dependency failed)",
                         log_tail(rdir, tail))
    return RunStatus(name, "not-submitted")


def sweep_status(sweep_dir: Path, tail: int = 15) -> list[RunStatus]:
    """Every run's status, in table order."""
    state = load_state(sweep_dir)
    if state is None:
        raise FileNotFoundError(f"{sweep_dir}/sweep.json does not exist: the sweep was never submitted or run there")
    queue = squeue_states() if any(i.get("job") for i in state["runs"].values()) else None
    order = state.get("order") or list(state["runs"])
    return [run_status(name, state["runs"][name], queue, tail) for name in order if name in state["runs"]]


def format_status(statuses: list[RunStatus]) -> str:
    width = max([len(s.name) for s in statuses] + [3])
    lines = [f"{'run':<{width}}  {'state':<13}  {'job':<12}  detail"]
    for s in statuses:
        lines.append(f"{s.name:<{width}}  {s.state:<13}  {s.job or '-':<12}  {s.detail}")
        for line in s.log:
            lines.append(f"{'':<{width}}  | {line}")
    counts = {st: sum(s.state == st for s in statuses) for st in STATES}
    lines.append(", ".join(f"{n} {st}" for st, n in counts.items() if n))
    return "\n".join(lines)
