"""Scoring one response: the single place evaluation calls ``rewards.score``.

Nothing here scores by itself: the metric functions live in :mod:`rewards` (parity with the public
SpatialTree-Bench scorer is tested there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

Judge = Callable[[list[dict]], str]


def make_judge(judge: Any) -> Judge | None:
    """The LLM judge of ``gpteval``: a ``rewards.JudgeConfig`` (recipe ``reward.judge``), a callable, or None."""
    if judge is None or callable(judge):
        return judge
    from rewards.metrics.llm_judge import JudgeClient

    return JudgeClient.from_config(judge)


def score_response(sample: Any, response: str, judge: Judge | None = None) -> dict[str, Any]:
    """``{"score": float in [0, 1], "details": ...}`` for ``response`` to a bench ``sample``.

    The bench reader has already applied the reference scorer's conventions: an "open" MCQ carries
    ``meanrelativeacc`` as its metric, and ``metric_extra`` holds the hint plus the options of MCQs.
    A metric rewards does not know scores 0 with ``details["error"]``, as in the reference scorer.
    """
    from rewards import METRICS, score

    if sample.metricfunc not in METRICS:
        return {"score": 0.0, "details": {"error": f"unknown metricfunc {sample.metricfunc!r}"}}
    result = score(sample.metricfunc, response, sample.answer, dict(sample.metric_extra or {}), judge=judge)
    return {"score": float(result["score"]), "details": result.get("details")}
