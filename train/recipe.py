"""Recipe loading: find a recipe by name, merge its bases, apply ``key=value`` overrides, check
every key and type against the typed tree in :mod:`train.config` and every value against the key table
(:mod:`train.keys`, through the one validator :mod:`rewards.keycheck`), fill derived values.

Import-light on purpose (omegaconf + the config dataclasses): every CLI calls it before any
model or dataset is touched, so a typo costs a second, not a model load.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from eval_hooks import protocol as eval_protocol
from rewards.config import check_reward_config
from rewards.did_you_mean import did_you_mean
from rewards.keycheck import check_keys, check_values
from train.config import Recipe
from train.keys import table

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


def layers(name: str, _seen: tuple[str, ...] = ()) -> list[tuple[Path, DictConfig]]:
    """(file, its own keys without ``bases``) of the recipe ``name`` and its bases, in merge order (bases first,
    recursively); the last is the recipe itself."""
    path = find_recipe(name)
    key = str(path.resolve())
    if key in _seen:
        raise RecipeError(f"recipe bases form a cycle: {' -> '.join(_seen + (key,))}")
    own = _load_yaml(path)
    bases = own.pop("bases", None) or []
    if isinstance(bases, str):
        bases = [bases]
    out: list[tuple[Path, DictConfig]] = []
    for base in bases:
        out += layers(str(base), _seen + (key,))
    return out + [(path, own)]


def compose(name: str) -> DictConfig:
    """The recipe ``name`` merged over its bases (recursively, in order), untyped."""
    stack = layers(name)
    merged = OmegaConf.create({})
    for _, own in stack:
        merged = OmegaConf.merge(merged, own)
    path, own = stack[-1]
    if "name" not in own:
        merged["name"] = path.stem
    return merged


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
    check_keys(merged_plain, Recipe, error=RecipeError)
    schema = OmegaConf.structured(Recipe)
    try:
        cfg = OmegaConf.merge(schema, base, cli)
        recipe = OmegaConf.to_object(cfg)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or ""
        msg = str(exc).splitlines()[0]
        raise RecipeError(f"bad value for {key!r}: {msg}" if key else f"bad recipe: {msg}") from exc
    assert isinstance(recipe, Recipe)
    check_values(recipe, table(), error=RecipeError)  # allowed values and ranges, from the key table
    from train.key_ranges import relation_problem  # the rules between keys the table cannot state

    problem = relation_problem(recipe)
    if problem:
        raise RecipeError(problem)
    try:  # the reward section's own rules (per-level lengths, reward.tasks entries) at load time, not mid-run
        check_reward_config(recipe.reward)
    except ValueError as exc:
        raise RecipeError(str(exc)) from None
    return finalize(recipe, overrides)


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
