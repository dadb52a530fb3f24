"""``meanrelativeacc``: VSI-Bench's mean relative accuracy of a number.

MRA = mean over the 10 thresholds theta in {0.50, 0.55, ..., 0.95} of 1[|pred - gt| / gt <= 1 - theta].

Matches the benchmark scorer, including two of its conventions:
- the prediction is the first number in the response after thousands separators (every comma) are removed
  ("1,250 m" -> 1250; "(3, 4)" -> 34);
- the error is divided by the signed target, as the scorer does: with a negative target every prediction
  passes every threshold (score 1). The benchmark's numeric targets are positive; for a negative target
  ``details["negative_target"]`` is set so callers can see it.
A target of 0 or a missing number scores 0.
"""

from __future__ import annotations

import re

import numpy as np

from rewards.metrics.record import Metric

# The thresholds exactly as the scorer computes them (np.linspace, then 1 - theta), so that boundary cases
# such as |pred - gt| / gt == 0.05 fall on the same side.
_TOLERANCES = tuple(float(t) for t in (1 - np.linspace(0.5, 0.95, 10)))
_NUMBER = re.compile(r"-?\d+\.?\d*")


def first_number(text: str) -> str:
    """The first number in ``text`` with every comma removed, as a string ("" when there is none)."""
    m = _NUMBER.search(text.replace(",", ""))
    return m.group() if m else ""


def mean_relative_accuracy(pred: float, target: float) -> float:
    """MRA of one prediction; raises ZeroDivisionError for a target of 0 (the caller scores that 0)."""
    err = abs(pred - target) / target
    return sum(1 for tol in _TOLERANCES if err <= tol) / len(_TOLERANCES)


def meanrelativeacc(response: str, answer, extra_info: dict | None = None) -> dict:
    """Score a numeric answer; ``answer`` is the target as text or a number."""
    pred_text = first_number(response)
    target = float(answer)
    details = {"pred_number": pred_text, "gt_number": target}
    if not pred_text:
        details["error"] = "no number in the response"
        return {"score": 0.0, "details": details}
    if target == 0:
        details["error"] = "target is 0: relative error undefined"
        return {"score": 0.0, "details": details}
    if target < 0:
        details["negative_target"] = True
    return {"score": mean_relative_accuracy(float(pred_text), target), "details": details}


RECORDS = (Metric("meanrelativeacc", meanrelativeacc, answer="number", prompt="{question} Do not response anything other than a "
                  "single number! If you cannot determine the answer, please guess a value."),)
