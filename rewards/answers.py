"""Is a record scorable at all? One check of a record's metric and reference answer, before anything is scored.

A record whose metric is unknown, or whose reference answer its metric cannot use (a null answer, a dict where a
letter is due, a letter that is not among the question's options), would score 0 for every response: GRPO would
train on a reward that is always 0 and evaluation would report a 0 that is not the model's. Such a record is a bad
record, named with its file and row by the caller (GRPO's prompt check, the launchers' pre-load checks, the
evaluation subset), never a 0.

Imports the metric table only (standard library otherwise), like the rest of :mod:`rewards`.
"""

from __future__ import annotations

import json
import math
from typing import Any

from rewards.did_you_mean import did_you_mean

DICT_ANSWERS = ("gravityeval", "agenticnaveval", "manipulateeval")
"""Metrics whose reference answer may be a mapping (or its JSON text)."""
YES_NO = ("yes", "no")


def known_metrics() -> tuple[str, ...]:
    from rewards.metrics import METRICS

    return tuple(METRICS)


def _letters(options: Any) -> list[str]:
    n = len(options) if isinstance(options, (list, tuple)) else 0
    return [chr(ord("A") + i) for i in range(n)]


def answer_problem(metricfunc: Any, answer: Any, metric_extra: Any = None) -> str | None:
    """Why a record with this metric and reference answer cannot be scored, or None when it can."""
    known = known_metrics()
    if not metricfunc:
        return "no metricfunc"
    if metricfunc not in known:
        return f"unknown metricfunc {metricfunc!r}{did_you_mean(str(metricfunc), known)} (known: {', '.join(known)})"
    if answer is None:
        return f"the answer is null ({metricfunc} needs a reference answer)"
    if isinstance(answer, bool):
        return f"the answer is a boolean ({answer!r}), not what {metricfunc} compares with"
    if isinstance(answer, (dict, list)) and metricfunc not in DICT_ANSWERS:
        return f"the answer is a {type(answer).__name__} ({json.dumps(answer)[:60]}), not what {metricfunc} compares with"
    extra = metric_extra if isinstance(metric_extra, dict) else {}
    if metricfunc == "multichoiceeval":
        letters = _letters(extra.get("option"))
        if not letters:
            return "a multiple-choice record without options"
        if not isinstance(answer, str) or answer not in letters:
            return f"the answer {answer!r} is not one of the options' letters {', '.join(letters)}"
    elif metricfunc == "cogmapeval":
        if not isinstance(answer, str) or len(answer) != 1 or not answer.isupper():
            return f"the answer {answer!r} is not an option letter (cogmapeval compares letters)"
    elif metricfunc == "judge":
        if not isinstance(answer, str) or answer.strip().lower() not in YES_NO:
            return f"the answer {answer!r} is not yes or no (the judge metric compares the last yes/no)"
    elif metricfunc == "meanrelativeacc":
        try:
            value = float(answer)
        except (TypeError, ValueError):
            return f"the answer {answer!r} is not a number (meanrelativeacc compares numbers)"
        if not math.isfinite(value):
            return f"the answer {answer!r} is not a finite number"
    elif metricfunc in ("affmask", "gpteval"):
        if not isinstance(answer, str) or not answer.strip():
            return f"the answer {answer!r} is not a non-empty text ({metricfunc} reads text)"
    elif metricfunc == "gravityeval":
        try:
            gt = json.loads(answer) if isinstance(answer, str) else answer
        except json.JSONDecodeError:
            gt = None
        if not isinstance(gt, dict) or not {"roll", "pitch", "vfov"} <= set(gt):
            return f"the answer {str(answer)[:60]!r} is not a mapping with roll, pitch and vfov"
    return None
