"""Recipe loading: find a recipe by name, merge its bases, apply ``key=value`` overrides, check
every key and type against the typed tree in :mod:`train.config`, fill derived values.

Import-light on purpose (omegaconf + the config dataclasses): every CLI calls it before any
model or dataset is touched, so a typo costs a second, not a model load.
"""

from __future__ import annotations

import dataclasses
import os
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from eval_hooks import protocol as eval_protocol
from rewards.config import check_reward_config
from rewards.did_you_mean import did_you_mean
from train.config import CHOICES, Recipe

REPO_ROOT = Path(__file__).resolve().parents[1]
# Folders under recipes/ that hold other YAML (registry, DeepSpeed, sweeps), not recipes.
_NOT_RECIPES = {"data", "deepspeed", "sweeps"}


class RecipeError(ValueError):
    """A recipe or override is wrong; the message names the key or file and the closest valid names."""


def recipes_dir() -> Path:
    """recipes/ of this checkout, or ``$SPATIALTREE_RECIPES`` when set."""
    return Path(os.environ.get("SPATIALTREE_RECIPES", REPO_ROOT / "recipes"))


def available_recipes(root: Path | None = None) -> dict[str, Path]:
    """Recipe name -> file, for every YAML under recipes/ outside data/, deepspeed/ and sweeps/."""
    root = root or recipes_dir()
    found: dict[str, Path] = {}
    for path in sorted(root.rglob("*.yaml")):
        rel = path.relative_to(root)
        if rel.parts[0] in _NOT_RECIPES:
            continue
        if path.stem in found:
            raise RecipeError(f"two recipes are called {path.stem!r}: {found[path.stem]} and {path}")
        found[path.stem] = path
    return found


def find_recipe(name: str) -> Path:
    """The file of recipe ``name`` (a name under recipes/, or a path to a YAML file)."""
    if name.endswith((".yaml", ".yml")) or os.sep in name:
        path = Path(name)
        if not path.is_file():
            raise RecipeError(f"recipe file {name!r} does not exist")
        return path
    recipes = available_recipes()
    if name not in recipes:
        raise RecipeError(f"unknown recipe {name!r}{did_you_mean(name, sorted(recipes))}"
                          f" (recipes live in {recipes_dir()})")
    return recipes[name]


def _load_yaml(path: Path) -> DictConfig:
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml errors carry line numbers in their message
        raise RecipeError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(cfg, DictConfig):
        raise RecipeError(f"{path}: a recipe must be a mapping at the top level")
    return cfg


def compose(name: str, _seen: tuple[str, ...] = ()) -> DictConfig:
    """The recipe ``name`` merged over its bases (recursively, in order), untyped."""
    path = find_recipe(name)
    key = str(path.resolve())
    if key in _seen:
        raise RecipeError(f"recipe bases form a cycle: {' -> '.join(_seen + (key,))}")
    own = _load_yaml(path)
    bases = own.pop("bases", None) or []
    if isinstance(bases, str):
        bases = [bases]
    merged = OmegaConf.create({})
    for base in bases:
        merged = OmegaConf.merge(merged, compose(str(base), _seen + (key,)))
    merged = OmegaConf.merge(merged, own)
    if "name" not in own:
        merged["name"] = path.stem
    return merged


# ---------------------------------------------------------------------------- key checking

def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _check_keys(node: Any, cls: type, prefix: str) -> None:
    """Raise RecipeError on the first key not in the dataclass tree rooted at ``cls``."""
    if not isinstance(node, dict):
        return
    fields = _field_types(cls)
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if key not in fields:
            siblings = [f"{prefix}{f}" for f in fields]
            everywhere = _all_keys(Recipe)
            hint = did_you_mean(dotted, siblings) or did_you_mean(dotted, everywhere)
            raise RecipeError(f"unknown key {dotted!r}{hint}")
        ftype = fields[key]
        if dataclasses.is_dataclass(ftype):
            if value is not None and not isinstance(value, dict):
                raise RecipeError(f"{dotted!r} is a section: give its keys as a mapping ({dotted}.{next(iter(_field_types(ftype)))}"
                                  f"=...), not {value!r}")
            _check_keys(value, ftype, dotted + ".")
        elif typing.get_origin(ftype) is dict:
            vtype = typing.get_args(ftype)[1]
            if dataclasses.is_dataclass(vtype) and isinstance(value, dict):
                for sub, subval in value.items():
                    _check_keys(subval, vtype, f"{dotted}.{sub}.")


def _all_keys(cls: type, prefix: str = "") -> list[str]:
    out = []
    for name, ftype in _field_types(cls).items():
        out.append(prefix + name)
        if dataclasses.is_dataclass(ftype):
            out.extend(_all_keys(ftype, prefix + name + "."))
    return out


def _check_choices(cfg: DictConfig) -> None:
    for key, choices in CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value == "False" and "off" in choices:  # YAML 1.1 reads a bare `off` as false: the user meant "off"
            OmegaConf.update(cfg, key, "off")
            continue
        if value is not None and value not in choices:
            raise RecipeError(f"{key}={value!r} is not one of {', '.join(choices)}{did_you_mean(str(value), choices)}")


# ---------------------------------------------------------------------------- public API

def parse_overrides(args: Sequence[str]) -> tuple[str | None, list[str]]:
    """Split ``recipe=NAME`` from the ``key=value`` overrides; anything else is an error."""
    recipe, overrides = None, []
    for arg in args:
        if "=" not in arg:
            raise RecipeError(f"expected key=value, got {arg!r}")
        key, value = arg.split("=", 1)
        if key == "recipe":
            recipe = value
        else:
            overrides.append(f"{key}={value}")
    return recipe, overrides


def load_recipe(name: str | None, overrides: Sequence[str] = ()) -> Recipe:
    """Compose, override, check and finalize a recipe; return the typed tree.

    ``name`` None starts from the schema defaults alone.
    """
    base = compose(name) if name else OmegaConf.create({"name": "default"})
    try:
        cli = OmegaConf.from_dotlist(list(overrides))
    except (OmegaConfBaseException, yaml.YAMLError) as exc:  # a value that is not valid YAML, e.g. "x=[1,"
        raise RecipeError(f"cannot parse overrides {list(overrides)}: {exc}") from exc
    merged_plain = OmegaConf.to_container(OmegaConf.merge(base, cli), resolve=False)
    _check_keys(merged_plain, Recipe, "")
    schema = OmegaConf.structured(Recipe)
    try:
        cfg = OmegaConf.merge(schema, base, cli)
        _check_choices(cfg)
        recipe = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        msg = str(exc).splitlines()[0]
        raise RecipeError(f"bad value for {key!r}: {msg}" if key else f"bad recipe: {msg}") from exc
    assert isinstance(recipe, Recipe)
    try:  # the reward section's own rules (per-level lengths, reward.tasks entries) at load time, not mid-run
        check_reward_config(recipe.reward)
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    _check_ranges(recipe)
    return finalize(recipe, overrides)


def _check_ranges(recipe: Recipe) -> None:
    """Values whose valid range their type cannot say."""
    w = recipe.optim.warmup_ratio
    if not 0 <= w < 1:  # the Trainer reads a warmup_steps of 1 or more as a number of steps, not a share
        raise RecipeError(f"optim.warmup_ratio={w!r} must be in [0, 1): the share of the steps spent warming up")


def finalize(recipe: Recipe, overrides: Sequence[str] = ()) -> Recipe:
    """Fill derived values in one place. Explicit values (zeros included) are never replaced.
    ``overrides``: the command line's ``key=value`` list (the default of ``mix.budget.match_overrides``)."""
    if recipe.optim.projector_lr is None:
        recipe.optim.projector_lr = recipe.optim.lr
    if recipe.optim.vision_lr is None:
        recipe.optim.vision_lr = recipe.optim.lr
    if recipe.grpo.epsilon_high is None:
        recipe.grpo.epsilon_high = recipe.grpo.epsilon
    if recipe.grpo.steps_per_generation is None:
        recipe.grpo.steps_per_generation = recipe.train.grad_accum
    verl = recipe.grpo.verl
    if verl.train_batch_size is None:  # the same completions per optimizer step as the TRL backend
        completions = recipe.train.per_device_batch_size * recipe.train.grad_accum * verl.nnodes * verl.gpus_per_node
        verl.train_batch_size = max(1, completions // max(1, recipe.grpo.num_generations))
    if recipe.train.packing_max_length is None:
        recipe.train.packing_max_length = recipe.data.max_length
    if recipe.mix.seed is None:
        recipe.mix.seed = recipe.train.seed
    budget = recipe.mix.budget
    if budget.match_recipe is not None and budget.match_overrides is None:
        budget.match_overrides = [o for o in overrides if not o.split("=", 1)[0].strip().startswith("mix.budget.match_")]
    recipe.eval = eval_protocol.resolve(recipe.eval)  # the (protocol) keys the recipe leaves unset
    if recipe.data.decontaminate_against is None:
        recipe.data.decontaminate_against = [recipe.eval.bench] if recipe.eval.bench else []
    return recipe


def matched_mix(recipe: Recipe):
    """The mix of the recipe named by ``mix.budget.match_recipe`` (loaded with ``mix.budget.match_overrides``),
    or None when the recipe matches nobody. Its tokens are planned by ``build_mix(match_mix=...)``."""
    budget = recipe.mix.budget
    if budget.match_recipe is None:
        return None
    return load_recipe(budget.match_recipe, list(budget.match_overrides or [])).mix


def to_yaml(recipe: Recipe) -> str:
    """The fully resolved recipe as YAML."""
    return OmegaConf.to_yaml(OmegaConf.structured(recipe))


def check_sources(recipe: Recipe) -> None:
    """Unknown or misplaced source names in ``mix``, and an ``eval.bench`` that is neither a registry source nor
    a file (e.g. the default bench with a custom ``data.registry``), fail here, before any model or data is
    loaded."""
    from data_mix.registry import RegistryError, check_mix, load_registry

    try:
        if recipe.mix.groups:
            check_mix(recipe.mix, load_registry(recipe.data.registry))
        if recipe.eval.bench:
            from eval_hooks.subset import bench_source

            bench_source(recipe.eval.bench, recipe.data)
    except (RegistryError, FileNotFoundError) as exc:
        raise RecipeError(str(exc)) from None
