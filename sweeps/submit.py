"""Submit a sweep's arrays with sbatch (or print them: dry run), recording job ids in sweep.json.

Finished runs (DONE marker) and runs whose last job is still pending or running are left out, so
submitting the same sweep again only submits what is missing or failed. A dependent array waits
(``afterok``) on exactly the array tasks of the runs it needs that are not finished yet.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from eval_hooks.io import atomic_write_json
from eval_hooks.layout import SWEEP_JSON
from sweeps.plan import plan
from sweeps.sbatch import render
from sweeps.spec import Sweep, SweepError
from sweeps.state import is_done, load_state, merge_state, new_state, now
from sweeps.status import squeue_states


def _sbatch(script: Path) -> str:
    if shutil.which("sbatch") is None:
        raise SweepError("sbatch not found: run on a Slurm login node, use --local, or start the local test cluster "
                         "(scripts/slurm/local_cluster.sh install && start)")
    out = subprocess.run(["sbatch", "--parsable", str(script)], capture_output=True, text=True, timeout=120)
    if out.returncode != 0:
        raise SweepError(f"sbatch {script} failed (exit {out.returncode}): {out.stderr.strip() or out.stdout.strip()}")
    return out.stdout.strip().split(";")[0]


def submit(sweep: Sweep, sweep_dir: Path, sets: list[str], dry_run: bool = False,
           echo: Callable[[str], None] = print) -> dict:
    """Submit (or with ``dry_run`` print) the arrays of ``sweep``; return the updated sweep.json content."""
    sweep_dir = Path(sweep_dir).resolve()
    python = sys.executable
    arrays = plan(sweep)
    old = load_state(sweep_dir)
    state = merge_state(old, new_state(sweep, arrays, sweep_dir, sets, python))
    runs = state["runs"]
    queue = squeue_states() if any(r.get("job") for r in runs.values()) else {}
    queued = {name: info["job"] for name, info in runs.items()
              if info.get("job") and queue is not None and info["job"] in queue}

    this_time: dict[str, str] = {}
    for array in arrays:
        indices = []
        for i, run in enumerate(array.runs):
            if is_done(runs[run.name]["dir"]):
                echo(f"# skip {run.name}: done")
            elif run.name in queued:
                echo(f"# skip {run.name}: already in the queue as {queued[run.name]}")
            else:
                indices.append(i)
        if not indices:
            continue
        deps = []
        for dep in array.after:
            if is_done(runs[dep]["dir"]):
                continue
            job = this_time.get(dep) or queued.get(dep)
            if job is None:
                raise SweepError(f"run {dep!r} is needed by array {array.name!r} but is neither done, queued nor "
                                 "submitted now")
            deps.append(job)
        dependency = "afterok:" + ":".join(deps) if deps else None
        script = render(sweep, array, sweep_dir, indices, dependency, python)
        if dry_run:
            echo(script)
            for i in indices:
                this_time[array.runs[i].name] = f"<{array.name}>_{i}"
            continue
        path = sweep_dir / "slurm" / f"{array.name}.sbatch"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(script)
        job_id = _sbatch(path)
        tasks = {}
        for i in indices:
            name = array.runs[i].name
            this_time[name] = f"{job_id}_{i}"
            runs[name]["job"] = this_time[name]
            runs[name]["mode"] = "slurm"
            tasks[str(i)] = name
        state["submissions"].append({"time": now(), "array": array.name, "job_id": job_id, "tasks": tasks,
                                     "dependency": dependency, "script": str(path), "sets": list(sets)})
        echo(f"submitted {array.name}: job {job_id}, tasks {', '.join(f'{i}={n}' for i, n in tasks.items())}"
             + (f" (after {dependency})" if dependency else ""))
        atomic_write_json(sweep_dir / SWEEP_JSON, state)
    if not dry_run:
        if not this_time:
            echo("nothing to submit: every run is done or queued")
        atomic_write_json(sweep_dir / SWEEP_JSON, state)
    return state
