"""SpatialTree-Bench metrics, one :class:`~rewards.metrics.record.Metric` record per ``metricfunc`` name.

Every module of this package that defines ``RECORDS`` contributes its metrics (adding one = one module plus its
parity cases). Each metric function takes ``(response, answer, extra_info)`` (a judged one also ``judge=``) and
returns ``{"score": float, "details": {...}}``; it may raise on malformed input. Call them through
:func:`rewards.score`, which turns any failure into a score of 0 and guarantees a finite score in [0, 1]. A
metric whose package is missing (``Metric.deps``: scipy for the L4 camera metrics, Pillow for affmask) raises
ImportError at import (:mod:`rewards.metrics.deps`), never scores 0.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable

from rewards.metrics import deps
from rewards.metrics.record import Metric


def _discover() -> dict[str, Metric]:
    found: dict[str, Metric] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.name in ("deps", "record"):
            continue
        for record in getattr(importlib.import_module(f"{__name__}.{info.name}"), "RECORDS", ()):
            if record.name in found:
                raise ImportError(f"metricfunc {record.name!r} is defined twice (rewards/metrics/{info.name}.py)")
            found[record.name] = record
    return found


REGISTRY: dict[str, Metric] = _discover()
"""metricfunc name -> its record."""
METRICS: dict[str, Callable[..., dict]] = {name: m.score for name, m in REGISTRY.items()}
"""metricfunc name -> metric function."""
DETERMINISTIC = tuple(name for name, m in REGISTRY.items() if not m.needs_judge)
"""Metrics whose score depends only on their inputs (all but the judged ones)."""

deps.check_installed(REGISTRY)  # a metric without its package fails here, loudly, not later as a score of 0


def needs_judge(metricfunc) -> bool:
    """True for a metric an LLM judge scores (False for unknown names)."""
    record = REGISTRY.get(metricfunc)
    return record is not None and record.needs_judge


def is_mcq(metricfunc) -> bool:
    """True for a multiple-choice metric (a letter among options)."""
    record = REGISTRY.get(metricfunc)
    return record is not None and record.is_mcq


def resolve(metricfunc, question_type, options) -> tuple[str | None, dict]:
    """(the metric that scores a benchmark record, what it adds to the metric's extra inputs), as the reference
    scorer resolves them: an ``open`` record of a metric with ``open_as`` is scored by that metric; a metric that
    reads options gets ``option``."""
    record = REGISTRY.get(metricfunc)
    if record is None:
        return metricfunc, {}
    if question_type == "open" and record.open_as:
        return record.open_as, {}
    return metricfunc, ({"option": list(options or [])} if record.options_in_extra else {})


def prompt_for(metricfunc, question: str, options: list[str], level: str | None) -> str:
    """The benchmark's user text for a record (chosen by its metricfunc before the open remap)."""
    record = REGISTRY.get(metricfunc)
    return record.prompt_for(question, options, level) if record else f"{question} "


__all__ = ["DETERMINISTIC", "METRICS", "REGISTRY", "Metric", "is_mcq", "needs_judge", "prompt_for", "resolve"]
