"""SpatialTree-Bench metric functions, one per ``metricfunc`` name.

Each takes ``(response, answer, extra_info)`` and returns ``{"score": float, "details": {...}}``; they may
raise on malformed input. Call them through :func:`rewards.score`, which turns any failure into a score
of 0 and guarantees a finite score in [0, 1]. A metric whose package is missing (scipy for the L4 camera
metrics, Pillow for affmask: :mod:`rewards.metrics.deps`) raises ImportError at import, never scores 0.
"""

from __future__ import annotations

from collections.abc import Callable

from rewards.metrics import deps
from rewards.metrics.affmask import affmask
from rewards.metrics.camera import agenticnaveval, manipulateeval
from rewards.metrics.choice import judge, multichoiceeval
from rewards.metrics.cogmap import cogmapeval
from rewards.metrics.gravity import gravityeval
from rewards.metrics.llm_judge import gpteval
from rewards.metrics.numeric import meanrelativeacc

METRICS: dict[str, Callable[..., dict]] = {
    "multichoiceeval": multichoiceeval,
    "meanrelativeacc": meanrelativeacc,
    "gravityeval": gravityeval,
    "agenticnaveval": agenticnaveval,
    "manipulateeval": manipulateeval,
    "cogmapeval": cogmapeval,
    "judge": judge,
    "affmask": affmask,
    "gpteval": gpteval,
}
"""metricfunc name -> metric function. ``gpteval`` also takes ``judge=``."""

deps.check_installed()  # a metric without its package fails here, loudly, not later as a score of 0

DETERMINISTIC = tuple(name for name in METRICS if name != "gpteval")
"""Metrics whose score depends only on their inputs (all but the LLM judge)."""

__all__ = ["METRICS", "DETERMINISTIC"]
