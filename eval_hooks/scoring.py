"""Scoring one response: the single place evaluation calls ``rewards.score``.

Nothing here scores by itself: the metric functions live in :mod:`rewards` (parity with the public
SpatialTree-Bench scorer is tested there), and so does the completion parser that finds the answer of a
GRPO-format response (``<think>..</think><answer>..</answer>``): evaluation with
``eval.answer_extraction=auto`` scores the same span as GRPO's accuracy reward.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

Judge = Callable[[list[dict]], str]

SOURCES = ("answer_tag", "after_think", "raw")
"""Where the scored text came from: the last answer block, the text after the last ``</think>`` (a think
block without an answer block), or the raw response."""
_FROM_PARSER = {"tag": "answer_tag", "after_think": "after_think"}


def make_judge(judge: Any) -> Judge | None:
    """The LLM judge of ``gpteval``: a ``rewards.JudgeConfig`` (recipe ``reward.judge``), a callable, or None."""
    if judge is None or callable(judge):
        return judge
    from rewards.metrics.llm_judge import JudgeClient

    return JudgeClient.from_config(judge)


def text_to_score(response: str, extraction: str = "auto") -> tuple[str, str]:
    """``(text the metric reads, source)`` of a response; source is one of :data:`SOURCES`.

    ``auto`` takes ``rewards.parse_completion``'s answer (stripped, as GRPO's accuracy reward scores it)
    when the response has an answer block or a closed think block; otherwise, and always with ``none``,
    the whole response, stripped: lmms-eval 0.7.3 strips every ``generate_until`` reply before the task's
    ``process_results`` sees it (``api/task.py``, ``ConfigurableTask.process_results``), and the MCQ letter
    parser is whitespace-sensitive (it finds no letter in ``"B\n"``, lmms-eval scores that reply as ``"B"``).
    """
    if extraction == "none":
        return response.strip(), "raw"
    if extraction != "auto":  # the recipe loader checks the value against the key table (train/keys.py)
        raise ValueError(f"eval.answer_extraction={extraction!r} is not a value of the key table")
    from rewards.completion import parse_completion

    parsed = parse_completion(response)
    source = _FROM_PARSER.get(parsed.answer_source)
    return (response.strip(), "raw") if source is None else (parsed.answer, source)


def score_response(sample: Any, response: str, judge: Judge | None = None,
                   extraction: str = "auto") -> dict[str, Any]:
    """``{"score": float in [0, 1], "details": ..., "scored_text": str, "answer_source": str}`` for
    ``response`` to a bench ``sample``; ``extraction`` as in :func:`text_to_score`.

    The bench reader has already applied the reference scorer's conventions: an "open" MCQ carries
    ``meanrelativeacc`` as its metric, and ``metric_extra`` holds the hint plus the options of MCQs.
    A metric rewards does not know scores 0 with ``details["error"]``, as in the reference scorer.
    """
    from rewards import METRICS, score

    text, source = text_to_score(response, extraction)
    out = {"scored_text": text, "answer_source": source}
    if sample.metricfunc not in METRICS:
        return {"score": 0.0, "details": {"error": f"unknown metricfunc {sample.metricfunc!r}"}, **out}
    result = score(sample.metricfunc, text, sample.answer, dict(sample.metric_extra or {}), judge=judge)
    return {"score": float(result["score"]), "details": result.get("details"), **out}


def extraction_summary(records: Iterable[Mapping[str, Any]], extraction: str) -> dict[str, Any]:
    """Counts for summary.json: responses scored per source (a record without ``answer_source`` was scored
    raw), think blocks left open (``unclosed_think``: generation stopped inside the reasoning, usually
    ``eval.max_new_tokens`` too small; scored raw), and with ``none`` the responses that hold an answer block
    all the same (``raw_with_answer_tag``: ``auto`` would have scored those differently)."""
    from rewards.completion import parse_completion

    counts: dict[str, Any] = {"mode": extraction, **{s: 0 for s in SOURCES}, "unclosed_think": 0}
    if extraction == "none":
        counts["raw_with_answer_tag"] = 0
    for rec in records:
        counts[rec.get("answer_source", "raw")] += 1
        parsed = parse_completion(rec["response"])
        counts["unclosed_think"] += parsed.n_think_open > 0 and parsed.n_think_close == 0
        if extraction == "none":
            counts["raw_with_answer_tag"] += parsed.answer_source == "tag"
    return counts


def extraction_metrics(counts: Mapping[str, Any], n: int) -> dict[str, float]:
    """``bench/answer_extracted_fraction`` (scored on an answer block or after ``</think>``) and
    ``bench/answer_after_think_fraction`` (think block, no answer block)."""
    extracted = counts["answer_tag"] + counts["after_think"]
    return {"bench/answer_extracted_fraction": extracted / n if n else 0.0,
            "bench/answer_after_think_fraction": counts["after_think"] / n if n else 0.0}
