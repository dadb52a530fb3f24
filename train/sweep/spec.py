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

import dataclasses
import difflib
import itertools
import re
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

REPO_ROOT = Path(__file__).resolve().parents[2]
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
        raise SweepError(f"no run {name!r} in sweep {self.name!r}{_closest(name, [r.name for r in self.runs])}")


def run_dir(sweep_dir: Path, name: str) -> Path:
    """The stable output directory of run ``name``."""
    return Path(sweep_dir) / "runs" / name


def resolve_refs(text: str, sweep_dir: Path) -> str:
    """Replace ``{run:NAME}`` by that run's directory."""
    return RUN_REF.sub(lambda m: str(run_dir(sweep_dir, m.group(1))), text)


# ---------------------------------------------------------------------------- checking helpers

def _closest(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.5)
    return ("; did you mean " + " or ".join(repr(c) for c in close) + "?") if close else ""


def _check_keys(node: Any, cls: type, where: str) -> None:
    """Unknown keys of ``node`` against dataclass ``cls`` (recursively) -> SweepError with the closest names."""
    if not isinstance(node, dict):
        return
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in node.items():
        if key not in names:
            raise SweepError(f"{where}: unknown key {key!r}{_closest(str(key), names)} (known: {', '.join(names)})")
        ftype = hints[key]
        if dataclasses.is_dataclass(ftype):
            _check_keys(value, ftype, f"{where}.{key}")


def _typed(node: dict, cls: type, where: str) -> Any:
    """``node`` merged onto the schema of ``cls``; type errors name the key."""
    _check_keys(node, cls, where)
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(cls), node))
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or ""
        raise SweepError(f"{where}: bad value for {key!r}: {str(exc).splitlines()[0]}") from exc


def _plain(value: Any) -> Any:
    if isinstance(value, (DictConfig, ListConfig)):
        return OmegaConf.to_container(value, resolve=False)
    return value


def _flatten(overrides: Any, where: str, prefix: str = "") -> dict[str, Any]:
    """Overrides as ``{dotted.key: value}`` from a mapping (nested or dotted) or a ``key=value`` list."""
    if overrides is None:
        return {}
    if isinstance(overrides, list):
        out = {}
        for item in overrides:
            if not isinstance(item, str) or "=" not in item:
                raise SweepError(f"{where}: override {item!r} is not key=value")
            k, v = item.split("=", 1)
            out[k.strip()] = v
        return out
    if not isinstance(overrides, dict):
        raise SweepError(f"{where}: overrides must be a mapping or a list of key=value, got {overrides!r}")
    out = {}
    for k, v in overrides.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, where, key + "."))
        else:
            out[key] = v
    return out


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


# ---------------------------------------------------------------------------- loading

def _expand_grid(entry: dict, where: str) -> list[dict]:
    axes = _flatten(entry.get("axes") or {}, where + ".axes")
    if not axes:
        raise SweepError(f"{where}: a grid needs axes (override key -> list of values)")
    for key, values in axes.items():
        if not isinstance(values, list) or not values:
            raise SweepError(f"{where}.axes.{key}: must be a non-empty list of values")
    template = entry.get("name") or "_".join(f"{k.split('.')[-1]}{{{k}}}" for k in axes)
    out = []
    for combo in itertools.product(*axes.values()):
        values = dict(zip(axes, combo))
        name = template
        for k, v in values.items():
            name = name.replace("{" + k + "}", format_value(v))
        if "{" in name:
            raise SweepError(f"{where}: name template {template!r} names a key that is not an axis")
        run = {k: v for k, v in entry.items() if k != "axes"}
        run["name"] = name
        run["overrides"] = {**_flatten(entry.get("overrides"), where), **values}
        out.append(run)
    return out


def _resolve_launcher(launcher: str, where: str) -> str:
    if launcher in LAUNCHERS:
        return LAUNCHERS[launcher]
    path = Path(launcher)
    full = path if path.is_absolute() else REPO_ROOT / path
    if launcher.endswith(".py") and full.is_file():
        return launcher
    raise SweepError(f"{where}: launcher {launcher!r} is not one of {', '.join(LAUNCHERS)} nor an existing .py script"
                     f"{_closest(launcher, list(LAUNCHERS))}")


def load_sweep(path: str | Path, sets: Sequence[str] = (), validate_recipes: bool = True) -> Sweep:
    """Load, expand and check a sweep file.

    ``sets`` are ``key=value`` for every run: recipe overrides, or ``slurm.KEY=VALUE`` for resources.
    ``validate_recipes`` loads each run's recipe with its overrides (built-in launchers only), so a
    typo fails here, before anything is submitted.
    """
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"sweep file {str(path)!r} does not exist")
    try:
        raw = _plain(OmegaConf.load(path))
    except Exception as exc:
        raise SweepError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SweepError(f"{path}: a sweep file must be a mapping")
    where = str(path)
    _check_keys({k: v for k, v in raw.items() if k not in ("runs", "grid", "defaults")}, SweepFile, where)
    defaults_raw = dict(raw.get("defaults") or {})
    _check_keys({k: v for k, v in defaults_raw.items() if k != "overrides"}, Defaults, where + ".defaults")

    recipe_sets, slurm_sets = {}, {}
    for item in sets:
        if "=" not in item:
            raise SweepError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        if key.startswith("slurm."):
            slurm_sets[key[len("slurm."):]] = value
        else:
            recipe_sets[key] = value
    if slurm_sets:
        _check_keys(slurm_sets, SlurmConfig, "--set slurm")
        slurm_sets = _plain(OmegaConf.from_dotlist([f"{k}={v}" for k, v in slurm_sets.items()]))

    def_slurm = {**(defaults_raw.get("slurm") or {}), **slurm_sets}
    def_overrides = _flatten(defaults_raw.get("overrides"), where + ".defaults.overrides")

    entries: list[tuple[dict, str]] = []
    for i, entry in enumerate(raw.get("runs") or []):
        if not isinstance(entry, dict):
            raise SweepError(f"{where}: runs[{i}] must be a mapping")
        _check_keys({k: v for k, v in entry.items() if k not in ("overrides", "slurm")}, RunEntry, f"{where}: runs[{i}]")
        entries.append((entry, f"{where}: run {entry.get('name', f'#{i}')!r}"))
    for i, entry in enumerate(raw.get("grid") or []):
        if not isinstance(entry, dict):
            raise SweepError(f"{where}: grid[{i}] must be a mapping")
        _check_keys({k: v for k, v in entry.items() if k not in ("overrides", "slurm", "axes")},
                    GridEntry, f"{where}: grid[{i}]")
        entries += [(e, f"{where}: grid[{i}] run {e['name']!r}") for e in _expand_grid(entry, f"{where}: grid[{i}]")]
    if not entries:
        raise SweepError(f"{where}: no runs (give a `runs:` list and/or a `grid:`)")

    runs: list[Run] = []
    for entry, loc in entries:
        name = str(entry.get("name") or "")
        if not _NAME_OK.match(name):
            raise SweepError(f"{loc}: run name {name!r} must be letters, digits, '_', '-', '.', '+' (it names a folder)")
        overrides = {**def_overrides, **_flatten(entry.get("overrides"), loc + ".overrides"), **recipe_sets}
        for key in overrides:
            if key in RESERVED_OVERRIDES or key == "recipe":
                raise SweepError(f"{loc}: {key!r} is set by the sweep itself (run dir, resume, name, recipe field)")
        slurm = _typed({**def_slurm, **(entry.get("slurm") or {})}, SlurmConfig, loc + ".slurm")
        launcher_name = str(entry.get("launcher") or defaults_raw.get("launcher") or "sft")
        after = [str(a) for a in (entry.get("after") or [])]
        strs = [f"{k}={format_value(v)}" for k, v in overrides.items()]
        for s in strs:
            after += [r for r in RUN_REF.findall(s) if r not in after]
        recipe = entry.get("recipe", defaults_raw.get("recipe"))
        runs.append(Run(
            name=name, launcher=_resolve_launcher(launcher_name, loc), launcher_name=launcher_name,
            recipe=str(recipe) if recipe is not None else None, label=str(entry.get("label") or name),
            compare_to=entry.get("compare_to"), after=after, overrides=strs, slurm=slurm))

    sweep = Sweep(name=str(raw.get("name") or path.stem), description=str(raw.get("description") or ""),
                  baseline=raw.get("baseline"), runs=runs, source=path.resolve())
    _check_sweep(sweep, where)
    if validate_recipes:
        _validate_recipes(sweep)
    return sweep


def _check_sweep(sweep: Sweep, where: str) -> None:
    names = [r.name for r in sweep.runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SweepError(f"{where}: run names must be unique; repeated: {', '.join(dup)}")
    for ref_name, ref in [("baseline", sweep.baseline)] + [(f"run {r.name!r} compare_to", r.compare_to)
                                                           for r in sweep.runs]:
        if ref is not None and ref not in names:
            raise SweepError(f"{where}: {ref_name} {ref!r} is not a run{_closest(str(ref), names)}")
    for r in sweep.runs:
        for dep in r.after:
            if dep not in names:
                raise SweepError(f"{where}: run {r.name!r} depends on unknown run {dep!r}{_closest(dep, names)}")
            if dep == r.name:
                raise SweepError(f"{where}: run {r.name!r} depends on itself")
        s = r.slurm
        if s.nodes < 1 or s.gpus_per_node < 0 or s.cpus_per_task < 1 or (s.procs_per_node is not None
                                                                          and s.procs_per_node < 1):
            raise SweepError(f"{where}: run {r.name!r}: nodes and cpus_per_task must be >= 1, gpus_per_node >= 0, "
                             "procs_per_node >= 1")
        limit = parse_time(s.time)
        if s.requeue and not 0 < s.signal_secs < limit:
            raise SweepError(f"{where}: run {r.name!r}: slurm.signal_secs={s.signal_secs} must be between 0 and the "
                             f"time limit ({limit} s)")
    depth_of(sweep)  # raises on cycles


def depth_of(sweep: Sweep) -> dict[str, int]:
    """Run -> dependency depth (0 = no dependency); SweepError on a cycle."""
    by_name = {r.name: r for r in sweep.runs}
    depth: dict[str, int] = {}

    def visit(name: str, stack: tuple[str, ...]) -> int:
        if name in stack:
            raise SweepError(f"{sweep.source}: runs depend on each other in a cycle: {' -> '.join(stack + (name,))}")
        if name not in depth:
            deps = by_name[name].after
            depth[name] = 1 + max(visit(d, stack + (name,)) for d in deps) if deps else 0
        return depth[name]

    for r in sweep.runs:
        visit(r.name, ())
    return depth


def _validate_recipes(sweep: Sweep) -> None:
    """Load every built-in launcher's recipe with its overrides (keys and types), placeholder run dirs."""
    from train.recipe import RecipeError, load_recipe

    for r in sweep.runs:
        if r.launcher_name not in LAUNCHERS:
            continue
        try:
            load_recipe(r.recipe, r.recipe_overrides(Path("/sweep")))
        except RecipeError as exc:
            raise SweepError(f"{sweep.source}: run {r.name!r} (recipe {r.recipe!r}): {exc}") from exc


def procs_per_node(slurm: SlurmConfig) -> int:
    """torchrun processes per node."""
    if slurm.procs_per_node is not None:
        return slurm.procs_per_node
    return slurm.gpus_per_node if slurm.gpus_per_node > 0 else 1
