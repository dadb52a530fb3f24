"""What each GRPO backend does with the recipe, read from the key table (:mod:`train.keys`).

:func:`uncarried` lists every key a backend cannot carry whose value matters (differs from the default, or fails
the key's own ``ok`` rule): both backends log each line as a warning at start. :func:`mapping_problems` is the
static half of the key walk (tests/test_keys.py): a key without a valid TRL or verl mapping is a problem.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from rewards.keyspec import KeySpec, backend_kind

if TYPE_CHECKING:
    from train.config import Recipe

BACKENDS = ("trl", "verl")


def value_of(obj: Any, key: str) -> Any:
    """The value of a concrete dotted key in a recipe (attributes, then mapping entries)."""
    for part in key.split("."):
        obj = obj[part] if isinstance(obj, Mapping) else getattr(obj, part)
    return obj


@lru_cache(maxsize=1)
def default_recipe() -> Recipe:
    """The schema defaults, finalized like any recipe (derived values and the protocol preset filled)."""
    from train.recipe import load_recipe

    return load_recipe(None)


def uncarried(recipe: Recipe, backend: str, table: Mapping[str, KeySpec] | None = None) -> list[str]:
    """``key=value: what the backend does instead`` for every key ``backend`` cannot carry whose value matters."""
    from train.keys import table as full_table

    base = default_recipe()
    lines = []
    for key, spec in (table or full_table()).items():
        mapping = spec.backend(backend)
        if "*" in key or backend_kind(mapping, backend) != "unsupported":
            continue
        value, default = value_of(recipe, key), value_of(base, key)
        ok = spec.ok(backend)
        if not (ok(value, default, recipe) if ok else value == default):
            lines.append(f"{key}={value!r}: {mapping[len('unsupported: '):]}")
    return lines


def mapping_problems(table: Mapping[str, KeySpec]) -> list[str]:
    """One line per key whose TRL or verl mapping is missing or not one of: a TRL argument ``arg:NAME``, a verl
    config path, ``project: ...``, ``unsupported: ...``; and per bad provenance."""
    from rewards.keyspec import PROVENANCES

    out = []
    for key, spec in table.items():
        for backend in BACKENDS:
            mapping = spec.backend(backend)
            if backend_kind(mapping, backend) is None:
                out.append(f"{key}: no valid {backend} mapping ({mapping!r})")
            elif "*" in key and backend_kind(mapping, backend) == "unsupported":
                out.append(f"{key}: a mapping entry cannot be unsupported (nothing would warn)")
        if spec.provenance not in PROVENANCES:
            out.append(f"{key}: provenance {spec.provenance!r} is not one of {', '.join(PROVENANCES)}")
    return out
