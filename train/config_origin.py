"""Where each value of a resolved recipe comes from, for ``--print-config``: a recipe file (the recipe or one of
its bases), a command-line override, the evaluation protocol's preset, a value derived from others
(``train.recipe.finalize``) or the schema default."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from eval_hooks.protocol import PROTOCOLS
from train.config import Recipe
from train.key_backends import value_of
from train.recipe import REPO_ROOT, layers


def _record(node: Any, prefix: str, origin: str, out: dict[str, str]) -> None:
    """Every key of a plain mapping (sections too) -> ``origin``."""
    if not isinstance(node, Mapping):
        return
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        out[dotted] = origin
        _record(value, dotted + ".", origin, out)


def leaves(obj: Any, prefix: str = "") -> list[str]:
    """Concrete dotted leaf keys of a dataclass tree (mapping entries of sections expanded)."""
    out = []
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            out += leaves(value, key + ".")
        elif isinstance(value, Mapping) and value and all(dataclasses.is_dataclass(v) for v in value.values()):
            for sub, entry in value.items():
                out += leaves(entry, f"{key}.{sub}.")
        else:
            out.append(key)
    return out


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def origins(recipe: Recipe, name: str | None, overrides: Sequence[str]) -> dict[str, str]:
    """Concrete leaf key -> where its value in ``recipe`` (the loaded recipe) came from."""
    found: dict[str, str] = {}
    if name:
        stack = layers(name)
        for i, (path, own) in enumerate(stack):
            kind = "recipe" if i == len(stack) - 1 else "base"
            _record(OmegaConf.to_container(own, resolve=False), "", f"{kind} {_shown(path)}", found)
        if "name" not in stack[-1][1]:
            found["name"] = "the recipe's file name"
    _record(OmegaConf.to_container(OmegaConf.from_dotlist(list(overrides)), resolve=False), "", "override", found)
    schema = Recipe()
    preset = PROTOCOLS.get(recipe.eval.protocol, {})
    out = {}
    for key in leaves(recipe):
        if key in found:
            out[key] = found[key]
        elif key.startswith("eval.") and key[5:] in preset:
            out[key] = f"preset eval.protocol={recipe.eval.protocol}"
        else:
            try:
                unset = value_of(schema, key) is None
            except (AttributeError, KeyError):
                unset = False
            out[key] = "derived (train.recipe.finalize)" if unset and value_of(recipe, key) is not None else "default"
    return out


def origin_comments(recipe: Recipe, name: str | None, overrides: Sequence[str]) -> str:
    """YAML comment lines: every leaf key, its winning value and where it came from."""
    lines = ["# where each value comes from (recipe / base file, override, preset, derived, default):"]
    for key, origin in origins(recipe, name, overrides).items():
        value = value_of(recipe, key)
        text = repr(value) if not isinstance(value, str) or "\n" not in value else repr(value[:40] + "...")
        lines.append(f"#   {key} = {text}  <- {origin}")
    return "\n".join(lines) + "\n"
