"""The prompt text of a SpatialTree-Bench record, as the public benchmark builds it.

The text belongs to the record's metric (``Metric.prompt`` in rewards/metrics/, chosen by the record's
``metricfunc`` before the "open" multichoice remap, and by its level); reproducing the benchmark's wording keeps
our scores comparable with its leaderboard.
"""

from __future__ import annotations

from rewards.metrics import prompt_for


def bench_prompt(question: str, options: list[str], metricfunc: str | None, level: str | None) -> str:
    """The user text for a record (question, options and answer-format instructions)."""
    return prompt_for(metricfunc, question, options, level)
