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

YES_NO = ("yes", "no")


def known_metrics() -> tuple[str, ...]:
    from rewards.metrics import METRICS

    return tuple(METRICS)


def _letters(options: Any) -> list[str]:
    n = len(options) if isinstance(options, (list, tuple)) else 0
    return [chr(ord("A") + i) for i in range(n)]


def answer_problem(metricfunc: Any, answer: Any, metric_extra: Any = None) -> str | None:
    """Why a record with this metric and reference answer cannot be scored, or None when it can. What a usable
    answer is comes from the metric's record (``Metric.answer``, rewards/metrics/record.py)."""
    from rewards.metrics import REGISTRY

    known = known_metrics()
    if not metricfunc:
        return "no metricfunc"
    if metricfunc not in known:
        return f"unknown metricfunc {metricfunc!r}{did_you_mean(str(metricfunc), known)} (known: {', '.join(known)})"
    if answer is None:
        return f"the answer is null ({metricfunc} needs a reference answer)"
    if isinstance(answer, bool):
        return f"the answer is a boolean ({answer!r}), not what {metricfunc} compares with"
    kind = REGISTRY[metricfunc].answer
    if isinstance(answer, (dict, list)) and kind not in ("mapping_ok", "gravity_json", "any"):
        return f"the answer is a {type(answer).__name__} ({json.dumps(answer)[:60]}), not what {metricfunc} compares with"
    check = ANSWER_CHECKS.get(kind)
    return check(metricfunc, answer, metric_extra if isinstance(metric_extra, dict) else {}) if check else None


def _letter_in_options(metricfunc: str, answer: Any, extra: dict) -> str | None:
    letters = _letters(extra.get("option"))
    if not letters:
        return "a multiple-choice record without options"
    if not isinstance(answer, str) or answer not in letters:
        return f"the answer {answer!r} is not one of the options' letters {', '.join(letters)}"
    return None


def _letter(metricfunc: str, answer: Any, extra: dict) -> str | None:
    if not isinstance(answer, str) or len(answer) != 1 or not answer.isupper():
        return f"the answer {answer!r} is not an option letter ({metricfunc} compares letters)"
    return None


def _yes_no(metricfunc: str, answer: Any, extra: dict) -> str | None:
    if not isinstance(answer, str) or answer.strip().lower() not in YES_NO:
        return f"the answer {answer!r} is not yes or no (the {metricfunc} metric compares the last yes/no)"
    return None


def _number(metricfunc: str, answer: Any, extra: dict) -> str | None:
    try:
        value = float(answer)
    except (TypeError, ValueError):
        return f"the answer {answer!r} is not a number ({metricfunc} compares numbers)"
    if not math.isfinite(value):
        return f"the answer {answer!r} is not a finite number"
    return None


def _text(metricfunc: str, answer: Any, extra: dict) -> str | None:
    if not isinstance(answer, str) or not answer.strip():
        return f"the answer {answer!r} is not a non-empty text ({metricfunc} reads text)"
    return None


def _gravity_json(metricfunc: str, answer: Any, extra: dict) -> str | None:
    try:
        gt = json.loads(answer) if isinstance(answer, str) else answer
    except json.JSONDecodeError:
        gt = None
    if not isinstance(gt, dict) or not {"roll", "pitch", "vfov"} <= set(gt):
        return f"the answer {str(answer)[:60]!r} is not a mapping with roll, pitch and vfov"
    return None


ANSWER_CHECKS = {"letter_in_options": _letter_in_options, "letter": _letter, "yes_no": _yes_no, "number": _number,
                 "text": _text, "gravity_json": _gravity_json}
"""``Metric.answer`` kind -> its check (``mapping_ok`` and ``any`` need none beyond the common ones)."""
