"""Scoring one response: the single place evaluation calls ``rewards.score``.

Nothing here scores by itself: the metric functions live in :mod:`rewards` (parity with the public
SpatialTree-Bench scorer is tested there).
"""

from __future__ import annotations

from typing import Any


def score_response(sample: Any, response: str) -> dict[str, Any]:
    """``{"score": float in [0, 1], "details": ...}`` for ``response`` to a bench ``sample``.

    The bench reader has already applied the reference scorer's conventions: an "open" MCQ carries
    ``meanrelativeacc`` as its metric, and ``metric_extra`` holds the hint plus the options of MCQs.
    """
    from rewards import score

    result = score(sample.metricfunc, response, sample.answer, dict(sample.metric_extra or {}))
    return {"score": float(result["score"]), "details": result.get("details")}
