"""The one validator of keyed settings: recipes (``train.recipe``), sweep files and rows (``sweeps.loader``) and the
reward section alone (``rewards.config``, as verl's reward adapter receives it).

- :func:`check_keys`: every key of a plain mapping exists in the dataclass tree, else one line naming the key
  and the closest valid names (the siblings first, then every key of the tree);
- :func:`check_values`: every value of a built dataclass tree is one of its key's allowed values and inside its
  range, as the key table (:mod:`rewards.keyspec`) declares them.

Standard library only; ``rewards`` imports nothing else of the project.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Mapping
from typing import Any

from rewards.did_you_mean import did_you_mean
from rewards.keyspec import KeySpec, in_range, mapping_of_sections, pattern_of


def all_keys(cls: type, prefix: str = "") -> list[str]:
    """Every dotted key of the dataclass tree (sections included; ``*`` for a mapping's entries)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        out.append(prefix + f.name)
        if dataclasses.is_dataclass(tp):
            out.extend(all_keys(tp, prefix + f.name + "."))
        elif mapping_of_sections(tp) is not None:
            out.extend(all_keys(mapping_of_sections(tp), prefix + f.name + ".*."))
    return out


def check_keys(node: Any, cls: type, prefix: str = "", *, error: type[Exception] = ValueError,
               where: str = "", list_known: bool = False, _root: tuple[type, str] | None = None) -> None:
    """Raise ``error`` on the first key of ``node`` (a plain mapping) that the dataclass tree of ``cls`` does not
    have. ``prefix``: the dotted name of ``node`` (``reward.``); ``where``: put before the message (a file);
    ``list_known``: also list the valid keys at that level (short schemas such as a sweep file's)."""
    if not isinstance(node, Mapping):
        return
    root = _root or (cls, prefix)
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    head = f"{where}: " if where else ""
    for key, value in node.items():
        dotted = f"{prefix}{key}"
        if key not in names:
            siblings = [f"{prefix}{n}" for n in names]
            hint = did_you_mean(dotted, siblings) or did_you_mean(dotted, [root[1] + k for k in all_keys(root[0])])
            known = f" (known: {', '.join(names)})" if list_known else ""
            raise error(f"{head}unknown key {dotted!r}{hint}{known}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if value is not None and not isinstance(value, Mapping):
                first = dataclasses.fields(tp)[0].name
                raise error(f"{head}{dotted!r} is a section: give its keys as a mapping ({dotted}.{first}=...), "
                            f"not {value!r}")
            check_keys(value, tp, dotted + ".", error=error, where=where, list_known=list_known, _root=root)
        elif mapping_of_sections(tp) is not None and isinstance(value, Mapping):
            entry = mapping_of_sections(tp)
            for sub, subval in value.items():
                if subval is not None and not isinstance(subval, Mapping):
                    raise error(f"{head}{dotted}.{sub} must be a mapping of {entry.__name__} keys, not {subval!r}")
                check_keys(subval, entry, f"{dotted}.{sub}.", error=error, where=where, list_known=list_known,
                           _root=root)


def check_value(key: str, value: Any, spec: KeySpec, error: type[Exception] = ValueError) -> None:
    """One value against its key's allowed values and range (None passes: "unset" is the type's business)."""
    if value is None:
        return
    if spec.choices is not None and value not in spec.choices:
        raise error(f"{key}={value!r} is not one of {', '.join(map(str, spec.choices))}"
                    f"{did_you_mean(str(value), spec.choices)}")
    if spec.range is not None and not in_range(value, spec.range):
        raise error(f"{key}={value!r} must be in {spec.range}: {first_sentence(spec.doc)}")


def check_values(obj: Any, table: Mapping[str, KeySpec], prefix: str = "", *,
                 error: type[Exception] = ValueError) -> None:
    """Every field of the dataclass instance ``obj`` (recursively; mapping entries too) against ``table``."""
    for f in dataclasses.fields(obj):
        value, key = getattr(obj, f.name), prefix + f.name
        if dataclasses.is_dataclass(value):
            check_values(value, table, key + ".", error=error)
            continue
        if isinstance(value, Mapping) and any(dataclasses.is_dataclass(v) for v in value.values()):
            for sub, entry in value.items():
                if dataclasses.is_dataclass(entry):
                    check_values(entry, table, f"{key}.{sub}.", error=error)
        pattern = pattern_of(key, table)
        if pattern is not None:
            choices = table[pattern].choices
            if value in (False, "False") and choices is not None and "off" in choices:
                value = "off"  # YAML 1.1 reads a bare `off` as false: the user meant the choice "off"
                setattr(obj, f.name, value)
            check_value(key, value, table[pattern], error)


def first_sentence(doc: str) -> str:
    """The first sentence of a key's doc (for one-line messages)."""
    end = doc.find(". ")
    return doc if end < 0 else doc[:end + 1]
