"""``gravityeval``: camera roll, pitch and vertical field of view against the annotation.

Per parameter S = exp(-(pred - gt)^2 / (2 sigma^2)) with sigma the annotation's uncertainty
(``roll_unc``, ``pitch_unc``, ``vfov_unc`` in the hint; S = 0 when sigma <= 0); the score is the mean of
the three. The prediction is read from a ```json block, a ``` block, the outermost braces, or
``roll: .. pitch: .. vfov: ..`` pairs in free text, as the benchmark scorer does. Values must be numbers:
a value given as a string, or one so large that its square overflows, scores 0 (as in the scorer).
"""

from __future__ import annotations

import json
import math
import re

from rewards.metrics._parse import brace_span, exact_fence, loads_json_or_fixed
from rewards.metrics.record import Metric

PARAMS = ("roll", "pitch", "vfov")
_PAIR_RES = {p: re.compile(rf'["\']?{p}["\']?\s*[:=]\s*(-?\d+\.?\d*)', re.IGNORECASE) for p in PARAMS}


def _prediction_text(response: str) -> str:
    for opening in ("```json\n", "```\n"):
        body = exact_fence(response, opening)
        if body is not None:
            return body
    span = brace_span(response)
    if span is not None:
        return span
    found = [_PAIR_RES[p].search(response) for p in PARAMS]
    if all(found):
        return "{" + ", ".join(f'"{p}": {m.group(1)}' for p, m in zip(PARAMS, found)) + "}"
    return response


def gaussian_score(pred, gt, sigma) -> float:
    """exp(-(pred - gt)^2 / (2 sigma^2)) clipped to [0, 1]; 0 when sigma <= 0 or the result is NaN.

    Arithmetic errors (a string value, an overflowing square) propagate: the caller scores them 0.
    """
    diff = abs(pred - gt)
    value = math.exp(-(diff ** 2) / (2 * (sigma ** 2))) if sigma > 0 else 0.0
    if value != value:  # NaN (a NaN prediction or target) scores 0
        return 0.0
    return max(0.0, min(float(value), 1.0))


def gravityeval(response: str, answer, extra_info: dict) -> dict:
    """``answer``: JSON text (or a dict) with roll, pitch, vfov; ``extra_info``: roll_unc, pitch_unc, vfov_unc."""
    try:
        pred = loads_json_or_fixed(_prediction_text(response))
    except json.JSONDecodeError:
        return {"score": 0.0, "details": {"error": "response is not JSON, even without trailing commas"}}
    if not isinstance(pred, dict):
        return {"score": 0.0, "details": {"error": f"prediction is a JSON {type(pred).__name__}, not an object"}}
    values = [pred.get(p) for p in PARAMS]
    if any(v is None for v in values):
        return {"score": 0.0, "details": {"error": "missing one of roll, pitch, vfov"}}
    gt = json.loads(answer) if isinstance(answer, str) else answer
    scores = {f"{p}_score": gaussian_score(v, gt[p], extra_info[f"{p}_unc"]) for p, v in zip(PARAMS, values)}
    return {"score": sum(scores.values()) / 3.0, "details": scores}


RECORDS = (Metric("gravityeval", gravityeval, answer="gravity_json"),)
