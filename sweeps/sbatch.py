"""Render the sbatch script of one job array.

Each array task finds its run from ``SLURM_ARRAY_TASK_ID`` and starts the launcher on every node
through ``srun`` + ``torchrun`` with a c10d rendezvous on the allocation's first node.

Pre-emption and time limits (documented in docs/SWEEPS.md):
- ``#SBATCH --signal=B:USR1@SECS`` sends SIGUSR1 to the batch shell only, SECS before the time
  limit. The shell's trap forwards it to the job step (``kill -USR1`` on srun, which relays it to
  every process of the step). torchrun is started with SIGUSR1 ignored (inherited through exec), so
  only the trainer processes act on it: they save a checkpoint at the next step boundary and exit 0.
  The shell then requeues its own task (``scontrol requeue JOB_TASK``); the next attempt runs the
  same command, which always carries ``train.resume=auto``.
- Pre-emption by Slurm (or ``scontrol requeue``) sends SIGTERM to every process: the trainers
  checkpoint and exit, torchrun forwards SIGTERM to them and waits, and Slurm requeues the task
  itself (``--requeue``).
- Markers in the run directory: RUNNING (an attempt is under way), DONE (the launcher exited 0 with
  no signal: the run is finished and later submissions skip it), FAILED (exit code, signal).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from sweeps.plan import ArrayJob, array_spec
from sweeps.spec import REPO_ROOT, Sweep, procs_per_node, run_dir

_HEADER = """\
#!/bin/bash
# SpatialTree-Train sweep {sweep!r}, job array {array!r}: {n} run(s), written by launch/sweep.py
# from {source}.
# Array task i runs the i-th run of the `case` below in SWEEP_DIR/runs/NAME (stable names: a
# resubmitted sweep skips runs whose DONE marker exists). {signal_secs} s before the time limit Slurm
# sends SIGUSR1 to this script, which forwards it to the job step; the trainers checkpoint and exit,
# and the task requeues itself. Every attempt passes train.resume=auto, so it resumes."""

_BODY = r"""
set -uo pipefail

SWEEP_DIR={sweep_dir}
REPO={repo}
PYTHON={python}
NPROC_PER_NODE={nproc}
REQUEUE={requeue}
MAX_REQUEUES={max_requeues}

case "${{SLURM_ARRAY_TASK_ID:?this script runs as a Slurm job array task}}" in
{cases}
  *) echo "sweep: no run for array task $SLURM_ARRAY_TASK_ID" >&2; exit 2 ;;
esac

RUN_DIR="$SWEEP_DIR/runs/$RUN"
mkdir -p "$RUN_DIR"
exec >>"$RUN_DIR/job.log" 2>&1
TASK="${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}"
ATTEMPT="${{SLURM_RESTART_COUNT:-0}}"
echo "=== sweep task $TASK: run $RUN, attempt $ATTEMPT, $SLURM_NNODES node(s) from $(hostname), $(date -Is)"
if [ -e "$RUN_DIR/DONE" ]; then echo "=== run $RUN is already done ($RUN_DIR/DONE); nothing to do"; exit 0; fi
rm -f "$RUN_DIR/FAILED"
printf '{{"job": "%s", "attempt": %s, "host": "%s", "start": "%s"}}\n' \
  "$TASK" "$ATTEMPT" "$(hostname)" "$(date -Is)" >"$RUN_DIR/RUNNING"

cd "$REPO" || exit 2
{setup}export SPATIALTREE_RUN_DIR="$RUN_DIR" SPATIALTREE_SWEEP_DIR="$SWEEP_DIR"

# Rendezvous: the first node of the allocation hosts the c10d store.
MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)"
MASTER_PORT={port}
RDZV_ID="$TASK"
export MASTER_ADDR MASTER_PORT

SIGNAL=""
STEP_PID=""
forward() {{
  SIGNAL="$1"
  echo "=== sweep: SIG$1 at $(date -Is); forwarding it to the job step"
  [ -n "$STEP_PID" ] && kill -"$1" "$STEP_PID" 2>/dev/null
}}
trap 'forward USR1' USR1
trap 'forward TERM' TERM

# One srun task per node runs torchrun; torchrun starts NPROC_PER_NODE trainer processes per node.
# SIGUSR1 is ignored by torchrun (set before exec) so that only the trainers handle it.
srun --nodes="$SLURM_NNODES" --ntasks="$SLURM_NNODES" --ntasks-per-node=1 \
  --cpus-per-task="${{SLURM_CPUS_PER_TASK:-1}}" --kill-on-bad-exit=1 \
  bash -c 'trap "" USR1; exec "$@"' torchrun \
  "$PYTHON" -m torch.distributed.run \
    --nnodes="$SLURM_NNODES" --nproc_per_node="$NPROC_PER_NODE" \
    --rdzv_backend=c10d --rdzv_endpoint="$MASTER_ADDR:$MASTER_PORT" --rdzv_id="$RDZV_ID" \
    --max_restarts=0 \
    "$LAUNCHER" "${{ARGS[@]}}" &
STEP_PID=$!
while :; do
  wait "$STEP_PID"; RC=$?
  # A trapped signal interrupts `wait` (status > 128) while the step is still running: wait again.
  if [ "$RC" -gt 128 ] && kill -0 "$STEP_PID" 2>/dev/null; then continue; fi
  break
done
rm -f "$RUN_DIR/RUNNING"

if [ -z "$SIGNAL" ] && [ "$RC" -eq 0 ]; then
  date -Is >"$RUN_DIR/DONE"
  echo "=== run $RUN done"
  exit 0
fi
if [ "$SIGNAL" = USR1 ] && [ "$REQUEUE" = 1 ]; then
  if [ "$ATTEMPT" -lt "$MAX_REQUEUES" ]; then
    echo "=== run $RUN: time limit near (launcher exit $RC); requeueing $TASK, the next attempt resumes"
    scontrol requeue "$TASK" && exit 0
    echo "=== sweep: scontrol requeue $TASK failed"
  else
    echo "=== run $RUN: $ATTEMPT requeues reached (slurm.max_requeues); not requeueing"
  fi
fi
printf '{{"exit_code": %s, "signal": "%s", "attempt": %s, "job": "%s", "time": "%s"}}\n' \
  "$RC" "$SIGNAL" "$ATTEMPT" "$TASK" "$(date -Is)" >"$RUN_DIR/FAILED"
if [ "$SIGNAL" = TERM ]; then
  echo "=== run $RUN stopped by SIGTERM (pre-emption, scontrol requeue, scancel or the time limit; exit $RC):" \
       "a pre-empted or requeued task runs again and resumes"
else
  echo "=== run $RUN failed (exit $RC${{SIGNAL:+, SIG$SIGNAL}})"
fi
[ "$RC" -eq 0 ] && RC=1
exit "$RC"
"""


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _wrap(words: list[str], indent: str, width: int = 110) -> str:
    """Words joined by spaces, continued on the next line (`` \\``) past ``width`` characters."""
    lines, cur = [], ""
    for w in words:
        if cur and len(indent) + len(cur) + 1 + len(w) > width:
            lines.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    lines.append(cur)
    return (" \\\n" + indent).join(lines)


def _case(index: int, run, sweep_dir: Path) -> str:
    args = _wrap([_q(a) for a in run.args(sweep_dir)], "       ")
    return (f"  {index}) RUN={_q(run.name)}; LAUNCHER={_q(run.launcher)}\n"
            f"     ARGS=({args}) ;;")


def sbatch_options(array: ArrayJob, sweep_dir: Path, indices: list[int], dependency: str | None) -> list[str]:
    """The ``#SBATCH`` options of ``array`` for the given task indices."""
    s = array.slurm
    opts = [f"--job-name={array.name}", f"--array={array_spec(indices, s.max_parallel)}",
            f"--nodes={s.nodes}", "--ntasks-per-node=1", f"--cpus-per-task={s.cpus_per_task}"]
    if s.gpus_per_node > 0:
        opts.append(f"--gpus-per-node={s.gpus_per_node}")
    if s.mem is not None:
        opts.append(f"--mem={s.mem}")
    opts.append(f"--time={s.time}")
    for key in ("partition", "account", "qos", "constraint"):
        value = getattr(s, key)
        if value is not None:
            opts.append(f"--{key}={value}")
    opts += [f"--output={sweep_dir}/slurm/%x-%A_%a.out", "--open-mode=append"]
    if s.requeue:
        opts += [f"--signal=B:USR1@{s.signal_secs}", "--requeue"]
    else:
        opts.append("--no-requeue")
    if dependency:
        opts += [f"--dependency={dependency}", "--kill-on-invalid-dep=yes"]
    opts += list(s.extra)
    return opts


def render(sweep: Sweep, array: ArrayJob, sweep_dir: Path, indices: list[int] | None = None,
           dependency: str | None = None, python: str | None = None) -> str:
    """The sbatch script of ``array``; ``indices`` = the tasks to submit (default: all)."""
    sweep_dir = Path(sweep_dir).resolve()
    if indices is None:
        indices = list(range(len(array.runs)))
    s = array.slurm
    header = _HEADER.format(sweep=sweep.name, array=array.name, n=len(indices), source=sweep.source,
                            signal_secs=s.signal_secs)
    options = "\n".join(f"#SBATCH {o}" for o in sbatch_options(array, sweep_dir, indices, dependency))
    setup = "".join(f"{line}\n" for line in s.setup)
    setup += "".join(f"export {k}={_q(v)}\n" for k, v in s.env.items())
    port = str(s.port) if s.port is not None else "$((20000 + SLURM_JOB_ID % 20000))"
    cases = "\n".join(_case(i, array.runs[i], sweep_dir) for i in indices)
    body = _BODY.format(sweep_dir=_q(sweep_dir), repo=_q(REPO_ROOT), python=_q(s.python or sys.executable),
                        nproc=procs_per_node(s), requeue=int(s.requeue), max_requeues=s.max_requeues,
                        cases=cases, setup=setup, port=port)
    return f"{header}\n{options}\n{body}"


def run_dirs(array: ArrayJob, sweep_dir: Path) -> dict[int, Path]:
    """Task index -> run directory."""
    return {i: run_dir(Path(sweep_dir).resolve(), r.name) for i, r in enumerate(array.runs)}
