"""Group a sweep's runs into Slurm job arrays.

Runs that share their dependencies and their resources form one array (table2_sft: one array of 7).
A run that depends on others (an RL row after its SFT row) goes into a later array whose submission
carries ``--dependency=afterok:JOB_TASK`` on exactly the tasks it needs. Task indices are positions in
the full array, so a run keeps its index when a resubmission leaves finished runs out.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sweeps.loader import depth_of
from sweeps.spec import Run, SlurmConfig, Sweep


@dataclass
class ArrayJob:
    """One job array: its runs in task order."""

    name: str
    """Job name: the sweep's name, with ``.N`` for the N-th array when there are several."""
    runs: list[Run]
    slurm: SlurmConfig
    after: list[str]
    """Runs (of earlier arrays) that every task of this array waits for."""

    def index(self, run_name: str) -> int:
        return [r.name for r in self.runs].index(run_name)


def _resource_key(slurm: SlurmConfig) -> str:
    return repr(dataclasses.asdict(slurm))


def plan(sweep: Sweep) -> list[ArrayJob]:
    """The arrays of ``sweep`` in submission order (dependencies first)."""
    depth = depth_of(sweep)
    groups: dict[tuple, list[Run]] = {}
    for run in sweep.runs:
        key = (depth[run.name], tuple(sorted(run.after)), _resource_key(run.slurm))
        groups.setdefault(key, []).append(run)
    keys = sorted(groups, key=lambda k: k[0])  # stable: table order within a depth
    arrays = []
    for i, key in enumerate(keys):
        runs = groups[key]
        name = sweep.name if len(keys) == 1 else f"{sweep.name}.{i}"
        arrays.append(ArrayJob(name=name, runs=runs, slurm=runs[0].slurm, after=list(key[1])))
    return arrays


def array_spec(indices: list[int], max_parallel: int | None = None) -> str:
    """Slurm ``--array`` value: ``0-6``, ``0,2-4``; ``%N`` throttles."""
    if not indices:
        raise ValueError("an array needs at least one task")
    idx = sorted(set(indices))
    parts, start, prev = [], idx[0], idx[0]
    for i in idx[1:] + [None]:
        if i is not None and i == prev + 1:
            prev = i
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if i is not None:
            start = prev = i
    spec = ",".join(parts)
    return f"{spec}%{max_parallel}" if max_parallel else spec
