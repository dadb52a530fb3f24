"""Load a sweep file: expand grids, merge defaults, apply ``--set``, check everything, load recipes.

The schema itself (dataclasses with a docstring per field) is :mod:`sweeps.spec`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from rewards.did_you_mean import did_you_mean
from rewards.keycheck import check_keys
from sweeps.spec import (
    _NAME_OK,
    LAUNCHERS,
    REPO_ROOT,
    RESERVED_OVERRIDES,
    RUN_REF,
    Defaults,
    GridEntry,
    Run,
    RunEntry,
    SlurmConfig,
    Sweep,
    SweepError,
    SweepFile,
    format_value,
    parse_time,
)

# ---------------------------------------------------------------------------- checking helpers

def _check_keys(node: Any, cls: type, where: str) -> None:
    """Unknown keys of ``node`` against dataclass ``cls`` (recursively) -> SweepError with the closest names
    (the project's one key validator, rewards.keycheck)."""
    check_keys(node, cls, error=SweepError, where=where, list_known=True)


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
                     f"{did_you_mean(launcher, list(LAUNCHERS))}")


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
            raise SweepError(f"{where}: {ref_name} {ref!r} is not a run{did_you_mean(str(ref), names)}")
    for r in sweep.runs:
        for dep in r.after:
            if dep not in names:
                raise SweepError(f"{where}: run {r.name!r} depends on unknown run {dep!r}{did_you_mean(dep, names)}")
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
    """Load every built-in launcher's recipe with its overrides (keys and types), placeholder run dirs, and make
    the launchers' own pre-load checks (mix source names, eval.bench), so a bad row fails at submission, not
    when its job starts."""
    from train.recipe import RecipeError, check_sources, load_recipe

    for r in sweep.runs:
        if r.launcher_name not in LAUNCHERS:
            continue
        try:
            check_sources(load_recipe(r.recipe, r.recipe_overrides(Path("/sweep"))))
        except RecipeError as exc:
            raise SweepError(f"{sweep.source}: run {r.name!r} (recipe {r.recipe!r}): {exc}") from exc
