"""The record of one recipe key (:class:`KeySpec`) and how a section's table is built from its dataclass.

One source of truth per key: the dataclass field gives the type, the default and the doc (the docstring under
the field); the section's declaration (:class:`Key`, next to it) gives what a type cannot say: allowed values or
range, where the default comes from (paper / SpatialScore / project choice) and what each GRPO backend does with
the key. Validation (:mod:`rewards.keycheck`), ``--explain``, docs/KEYS.md and the verl warnings all read the
table built here.

It lives in ``rewards`` because the reward section is declared on the rewards side, and ``rewards`` imports
nothing else of the project (verl's environment loads it); the other sections are declared in ``train/keys.py``.
Standard library only.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import math
import re
import textwrap
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

PROVENANCES = ("paper", "SpatialScore", "project choice")
"""Where a default comes from. "paper" only when the SpatialTree paper states the value."""
BACKEND_KINDS = ("arg", "path", "project", "unsupported")
"""How a GRPO backend takes a key: a TRL argument (``arg``), a verl config path (``path``), the project's own
code (``project``: the same on both backends, e.g. prompt loading before export) or ``unsupported`` (warned at
start when the value differs from the default)."""
VERL_ROOTS = ("data.", "actor_rollout_ref.", "algorithm.", "reward.", "trainer.", "ray_kwargs.")


@dataclass(frozen=True)
class Key:
    """What a section declares about one of its keys besides type, default and doc."""

    choices: tuple[Any, ...] | None = None
    """Allowed values (strings); None = any value of the type."""
    range: str | None = None
    """Allowed interval of a number, e.g. ``[0, 1)`` or ``[1, inf)``; None = any."""
    provenance: str = "project choice"
    """``paper``, ``SpatialScore`` or ``project choice``."""
    source: str = ""
    """Where exactly the default comes from (a section of the paper, a file of another project)."""
    trl: str | None = None
    """TRL backend: ``arg:NAME`` (an argument of TRL's GRPOConfig), ``project: ...`` or ``unsupported: ...``;
    None = the section's default."""
    verl: str | None = None
    """verl backend: a verl config path (``actor_rollout_ref.actor.optim.lr``), ``project: ...`` or
    ``unsupported: ...``; None = the section's default."""
    trl_ok: Callable[[Any, Any, Any], bool] | None = None
    """For an unsupported key: ``ok(value, default, recipe)`` True when nothing is lost (None: value == default)."""
    verl_ok: Callable[[Any, Any, Any], bool] | None = None
    """As ``trl_ok`` for verl."""
    probe: Any = None
    """A valid non-default value (override text) the key-walk test sets, when it cannot derive one."""
    when: tuple[str, ...] = ()
    """Overrides under which the key matters (``model.lora.enabled=true`` for ``model.lora.r``): the key-walk
    test sets them on both sides of its comparison."""


@dataclass(frozen=True)
class KeySpec:
    """One leaf key of the recipe: everything validation, ``--explain``, docs/KEYS.md and the backends read."""

    key: str
    """Dotted name; ``*`` stands for the entries of a mapping (``reward.levels.*.length_penalty``)."""
    type: str
    default: Any
    doc: str
    choices: tuple[Any, ...] | None
    range: str | None
    provenance: str
    source: str
    trl: str | None
    verl: str | None
    trl_ok: Callable[[Any, Any, Any], bool] | None = None
    verl_ok: Callable[[Any, Any, Any], bool] | None = None
    probe: Any = None
    when: tuple[str, ...] = ()

    def backend(self, name: str) -> str | None:
        return self.trl if name == "trl" else self.verl

    def ok(self, name: str):
        return self.trl_ok if name == "trl" else self.verl_ok


def backend_kind(mapping: str | None, backend: str) -> str | None:
    """``arg`` / ``path`` / ``project`` / ``unsupported`` for a backend mapping; None when it is not valid."""
    if not mapping:
        return None
    if mapping.startswith("unsupported: ") and len(mapping) > len("unsupported: "):
        return "unsupported"
    if mapping.startswith("project: ") and len(mapping) > len("project: "):
        return "project"
    if backend == "trl" and re.fullmatch(r"arg:[a-z_][a-z0-9_]*", mapping):
        return "arg"
    if backend == "verl" and mapping.startswith(VERL_ROOTS) and re.fullmatch(r"[A-Za-z0-9_.]+", mapping):
        return "path"
    return None


# ---------------------------------------------------------------------------- ranges

_RANGE = re.compile(r"^([\[(])\s*(-?inf|[-+0-9.e]+)\s*,\s*(-?inf|[-+0-9.e]+)\s*([\])])$")


def parse_range(text: str) -> tuple[float, float, bool, bool]:
    """``"[0, 1)"`` -> (0.0, 1.0, low closed, high open...) as (lo, hi, lo_closed, hi_closed)."""
    m = _RANGE.match(text.strip())
    if not m:
        raise ValueError(f"bad range {text!r}: write it like [0, 1) or (0, inf)")
    lo, hi = float(m.group(2)), float(m.group(3))
    return lo, hi, m.group(1) == "[", m.group(4) == "]"


def in_range(value: Any, text: str) -> bool:
    lo, hi, lo_closed, hi_closed = parse_range(text)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return False
    above = value >= lo if lo_closed else value > lo
    below = value <= hi if hi_closed else value < hi
    return above and below


# ---------------------------------------------------------------------------- building a table

@cache
def field_docs(cls: type) -> dict[str, str]:
    """Field name -> the docstring written under it in the class body (one paragraph, whitespace folded)."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    except (OSError, TypeError):
        return {}
    body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
    docs: dict[str, str] = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def type_name(tp: Any) -> str:
    """A type as a recipe author reads it: ``int``, ``float | None``, ``list[str]``."""
    if isinstance(tp, type) and not typing.get_args(tp):
        return tp.__name__
    text = re.sub(r"\w+(?:\.\w+)+\.(\w+)", r"\1", str(tp).replace("typing.", ""))
    return re.sub(r"Optional\[(.*)\]", r"\1 | None", text).replace("NoneType", "None")


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def mapping_of_sections(tp: Any) -> type | None:
    """The dataclass of ``dict[str, Dataclass]`` (an open mapping of sections), else None."""
    if typing.get_origin(tp) is dict:
        value = typing.get_args(tp)[1]
        if dataclasses.is_dataclass(value):
            return value
    return None


def build_table(cls: type, prefix: str, declared: Mapping[str, Key], trl: str, verl: str,
                defaults: Any = None) -> dict[str, KeySpec]:
    """Every leaf key under dataclass ``cls`` (key names start with ``prefix``), joined with ``declared``.

    ``trl``/``verl``: the backend mappings of keys that declare none. A declared key the dataclass does not
    have is an error (the table and the dataclass cannot drift apart). ``defaults``: an instance whose values
    are the defaults (for the entries of a mapping, an empty instance of the entry class).
    """
    out: dict[str, KeySpec] = {}
    _walk(cls, prefix, declared, trl, verl, defaults if defaults is not None else cls(), out)
    stray = sorted(set(declared) - set(out))
    if stray:
        raise KeyError(f"declared keys that {cls.__name__} does not have: {', '.join(stray)}")
    return out


def _walk(cls: type, prefix: str, declared, trl, verl, instance, out) -> None:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for f in dataclasses.fields(cls):
        tp, key = hints[f.name], prefix + f.name
        value = getattr(instance, f.name) if instance is not None else _default(f)
        if dataclasses.is_dataclass(tp):
            _walk(tp, key + ".", declared, trl, verl, value, out)
            continue
        entry_cls = mapping_of_sections(tp)
        if entry_cls is not None:  # the mapping itself is a key (its default); its entries' fields are keys too
            _walk(entry_cls, key + ".*.", declared, trl, verl, entry_cls(), out)
        d = declared.get(key, Key())
        out[key] = KeySpec(
            key=key, type=type_name(tp), default=value, doc=docs.get(f.name, ""), choices=d.choices,
            range=d.range, provenance=d.provenance, source=d.source, trl=d.trl or trl, verl=d.verl or verl,
            trl_ok=d.trl_ok, verl_ok=d.verl_ok, probe=d.probe, when=d.when)


def pattern_of(key: str, table: Mapping[str, KeySpec]) -> str | None:
    """The table key a concrete dotted key falls under (``reward.levels.L1.length_penalty`` ->
    ``reward.levels.*.length_penalty``), or None."""
    if key in table:
        return key
    parts = key.split(".")
    for i in range(len(parts)):
        candidate = ".".join(parts[:i] + ["*"] + parts[i + 1:])
        if candidate in table:
            return candidate
    return None
