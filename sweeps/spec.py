"""The sweep file schema: a list and/or grid of runs, each a launcher + recipe + overrides + Slurm resources.

A sweep YAML (recipes/sweeps/*.yaml) looks like::

    name: table2_sft
    baseline: baseline              # the report's deltas are taken against this run
    defaults:                       # every run starts from these (its own keys win; mappings merge)
      launcher: sft
      overrides: {eval.at_end: true}
      slurm: {nodes: 1, gpus_per_node: 8, time: "24:00:00"}
    runs:
      - {name: baseline, recipe: baseline, label: Baseline}
      - {name: dist, recipe: dist, label: B+Dist.}
    grid:                           # optional: the cartesian product of the axes
      - name: "lr{optim.lr}"
        recipe: dist
        axes: {optim.lr: [1e-5, 2e-5]}

A run may reference another run's output directory as ``{run:NAME}`` in an override value; that
makes it depend on NAME (afterok), as does ``after: [NAME]``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval_hooks.layout import sweep_run_dir
from rewards.did_you_mean import did_you_mean

REPO_ROOT = Path(__file__).resolve().parents[1]
LAUNCHERS = {"sft": "launch/sft.py", "grpo": "launch/grpo.py", "evaluate": "launch/evaluate.py"}
"""Built-in launchers; a launcher may also be a path to a script that takes the same ``key=value`` arguments."""
RUN_REF = re.compile(r"\{run:([A-Za-z0-9_.-]+)\}")
_NAME_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
# Overrides the sweep sets itself for every run: a sweep must not set them.
RESERVED_OVERRIDES = ("train.output_dir", "train.resume", "name")


class SweepError(ValueError):
    """A sweep file or option is wrong; the message names the file, the run and the key."""


@dataclass
class SlurmConfig:
    """Resources of one array task (one run) and how it is launched."""

    nodes: int = 1
    """Nodes per run; torchrun's rendezvous spans them (endpoint: the allocation's first node)."""
    gpus_per_node: int = 8
    """GPUs per node (``--gpus-per-node``); 0 = a CPU run (no GPU request)."""
    procs_per_node: int | None = None
    """Processes per node (torchrun ``--nproc_per_node``); None = ``gpus_per_node``, or 1 without GPUs."""
    cpus_per_task: int = 8
    """CPUs of the one Slurm task per node that runs torchrun (shared by its processes)."""
    mem: str | None = None
    """Memory per node (``--mem``), e.g. ``512G``; ``0`` = all of it; None = the partition's default."""
    time: str = "24:00:00"
    """Time limit of one attempt ([D-]HH:MM:SS or minutes); a longer run is requeued and resumes."""
    partition: str | None = None
    """Partition (``--partition``); None = the cluster's default."""
    account: str | None = None
    """Account charged (``--account``); None = the user's default."""
    qos: str | None = None
    """Quality of service (``--qos``); None = default."""
    constraint: str | None = None
    """Node features (``--constraint``), e.g. ``a100|h100``."""
    signal_secs: int = 300
    """Seconds before the time limit when the batch script gets SIGUSR1 (Slurm may send it up to 60 s early)."""
    requeue: bool = True
    """Requeue the task after a time-limit warning (the trainer checkpoints first) and allow Slurm to requeue it on pre-emption."""
    max_requeues: int = 20
    """Stop requeueing a task after this many restarts (guards against a loop that never progresses)."""
    port: int | None = None
    """Rendezvous port; None = 20000 + job id mod 20000 (distinct for tasks sharing a node)."""
    max_parallel: int | None = None
    """Run at most this many tasks of the array at once (``--array=...%N``); None = no limit."""
    python: str | None = None
    """Python on the compute nodes; None = the interpreter that ran launch/sweep.py."""
    setup: list[str] = field(default_factory=list)
    """Shell lines run before the launcher (``module load ...``, ``source venv/bin/activate``)."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables exported for the launcher."""
    extra: list[str] = field(default_factory=list)
    """More ``#SBATCH`` options, verbatim (e.g. ``--exclusive``)."""


@dataclass
class RunEntry:
    """One run as written in the sweep file (``runs:`` list entry)."""

    name: str = ""
    """Stable run name: the run directory is SWEEP_DIR/runs/NAME."""
    launcher: str | None = None
    """``sft``, ``grpo``, ``evaluate`` or a path to a launcher script."""
    recipe: str | None = None
    """Recipe name under recipes/ (or a YAML path); None = the schema defaults (e.g. for evaluate)."""
    label: str | None = None
    """Row label in the report (e.g. ``B+Dist.``); None = the name."""
    compare_to: str | None = None
    """Run this row's deltas are taken against; None = the sweep's baseline."""
    after: list[str] = field(default_factory=list)
    """Runs that must finish successfully first (Slurm afterok on their array tasks)."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Recipe overrides (dotted keys); values may contain ``{run:NAME}`` (that run's directory)."""
    slurm: dict[str, Any] = field(default_factory=dict)
    """Resource keys that differ from the defaults (see SlurmConfig)."""


@dataclass
class GridEntry(RunEntry):
    """A grid: one run per combination of the axes' values; ``name`` is a template like ``lr{optim.lr}``."""

    axes: dict[str, list[Any]] = field(default_factory=dict)
    """Override key -> list of values."""


@dataclass
class Defaults:
    """Keys every run starts from."""

    launcher: str = "sft"
    """Launcher of runs that do not name one."""
    recipe: str | None = None
    """Recipe of runs that do not name one."""
    overrides: dict[str, Any] = field(default_factory=dict)
    """Overrides of every run (a run's own win)."""
    slurm: SlurmConfig = field(default_factory=SlurmConfig)
    """Resources of every run (a run's ``slurm`` keys win)."""


@dataclass
class SweepFile:
    """A whole sweep file."""

    name: str = ""
    """Sweep name: the default sweep directory is runs/sweeps/NAME; the Slurm job name."""
    description: str = ""
    """One line on what the sweep reproduces."""
    baseline: str | None = None
    """The run the report's deltas are taken against (per-run ``compare_to`` wins)."""
    defaults: Defaults = field(default_factory=Defaults)
    """Keys every run starts from."""
    runs: list[RunEntry] = field(default_factory=list)
    """Runs, in table order."""
    grid: list[GridEntry] = field(default_factory=list)
    """Grids, expanded after ``runs``."""


@dataclass
class Run:
    """One fully resolved run."""

    name: str
    launcher: str
    """Script path relative to the repository (or absolute)."""
    launcher_name: str
    """As written: ``sft``, ``grpo``, ``evaluate`` or the script path."""
    recipe: str | None
    label: str
    compare_to: str | None
    after: list[str]
    overrides: list[str]
    """``key=value`` strings in the order they are passed, ``{run:NAME}`` still unresolved."""
    slurm: SlurmConfig

    def recipe_overrides(self, sweep_dir: Path) -> list[str]:
        """The run's overrides (references resolved), then the sweep's own keys (name, run dir, resume)."""
        out = [resolve_refs(o, sweep_dir) for o in self.overrides]
        return out + [f"name={self.name}", f"train.output_dir={run_dir(sweep_dir, self.name)}", "train.resume=auto"]

    def args(self, sweep_dir: Path) -> list[str]:
        """The launcher's arguments: ``recipe=NAME`` (when the run has one) and the overrides."""
        return ([f"recipe={self.recipe}"] if self.recipe else []) + self.recipe_overrides(sweep_dir)


@dataclass
class Sweep:
    """A loaded, checked sweep: runs in table order."""

    name: str
    description: str
    baseline: str | None
    runs: list[Run]
    source: Path

    def run(self, name: str) -> Run:
        for r in self.runs:
            if r.name == name:
                return r
        raise SweepError(f"no run {name!r} in sweep {self.name!r}{did_you_mean(name, [r.name for r in self.runs])}")


run_dir = sweep_run_dir  # SWEEP_DIR/runs/NAME: the stable output directory of run NAME (eval_hooks/layout.py)


def resolve_refs(text: str, sweep_dir: Path) -> str:
    """Replace ``{run:NAME}`` by that run's directory."""
    return RUN_REF.sub(lambda m: str(run_dir(sweep_dir, m.group(1))), text)


def procs_per_node(slurm: SlurmConfig) -> int:
    """torchrun processes per node."""
    if slurm.procs_per_node is not None:
        return slurm.procs_per_node
    return slurm.gpus_per_node if slurm.gpus_per_node > 0 else 1


def format_value(value: Any) -> str:
    """A value as the launchers' ``key=value`` parser (OmegaConf dotlist) reads it back."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(format_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{format_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def parse_time(text: str) -> int:
    """Slurm time limit -> seconds: ``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``."""
    text = str(text).strip()
    m = re.fullmatch(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?", text)
    if not m:
        raise SweepError(f"slurm.time {text!r} is not a Slurm time ([D-]HH:MM:SS or minutes)")
    days, a, b, c = m.groups()
    nums = [int(x) for x in (a, b, c) if x is not None]
    if days is not None:
        h, mi, s = (nums + [0, 0])[:3]
        return int(days) * 86400 + h * 3600 + mi * 60 + s
    if len(nums) == 1:
        return nums[0] * 60
    if len(nums) == 2:
        return nums[0] * 60 + nums[1]
    return nums[0] * 3600 + nums[1] * 60 + nums[2]
