"""``affmask``: is the predicted point inside the affordance mask?

The answer is a base64 image (optionally a ``data:...;base64,`` URL) of a grayscale mask; the score is the
mask's value at the predicted point divided by 255 (1 inside a binary mask, 0 outside). The point is the
coordinate pair that ends last in the response among ``x=.. y=..``, ``y=.. x=..``, ``(x, y)``, ``[x, y]``
and ``x, y``; a point with both coordinates in [0, 1] is read as normalized, otherwise as pixels; it is
clamped to the image. As in the benchmark scorer, including its rounding (Python's round-half-even).
"""

from __future__ import annotations

import base64
import binascii
import re
from functools import lru_cache

import numpy as np

from rewards.metrics.png import decode_mask_image
from rewards.metrics.record import Metric

# A number never starts inside a run of digits: the same matches as without the lookbehind (a match that
# could start mid-run also starts at the run's first digit, which is tried first), in linear time.
_NUM = r"([-+]?(?<!\d)\d+(?:\.\d+)?)"
# (pattern, True when the first group is x); on equal end positions the earlier pattern wins.
_POINT_PATTERNS = (
    (re.compile(rf"(?i)x\s*[:=]\s*{_NUM}\D+?y\s*[:=]\s*{_NUM}"), True),
    (re.compile(rf"(?i)y\s*[:=]\s*{_NUM}\D+?x\s*[:=]\s*{_NUM}"), False),
    (re.compile(rf"\(\s*{_NUM}\s*,\s*{_NUM}\s*\)"), True),
    (re.compile(rf"\[\s*{_NUM}\s*,\s*{_NUM}\s*\]"), True),
    (re.compile(rf"{_NUM}\s*,\s*{_NUM}"), True),
)


def last_point(text: str) -> tuple[float, float] | None:
    """The (x, y) pair whose match ends last in ``text``, or None. Matches of one pattern come in order
    of position, so only each pattern's last match can win."""
    text = text.strip()
    best = None
    for pattern, x_first in _POINT_PATTERNS:
        last = None
        for last in pattern.finditer(text):  # noqa: B007 - only the last match is used
            pass
        if last is not None and (best is None or last.end() > best[0]):
            a, b = float(last.group(1)), float(last.group(2))
            best = (last.end(), a, b) if x_first else (last.end(), b, a)
    return None if best is None else (best[1], best[2])


def _b64_bytes(mask_b64: str) -> bytes | None:
    text = mask_b64.split("base64,", 1)[-1] if "base64," in mask_b64 else mask_b64
    try:
        return base64.b64decode(text, validate=False)
    except (binascii.Error, ValueError):
        try:
            return base64.b64decode(text + "===")
        except (binascii.Error, ValueError):
            return None


@lru_cache(maxsize=256)
def decode_mask(mask_b64: str) -> np.ndarray | None:
    """The mask as an 8-bit grayscale array (cached: a GRPO group scores one mask many times)."""
    if not mask_b64:
        return None
    data = _b64_bytes(mask_b64)
    if not data:
        return None
    mask = decode_mask_image(data)
    if mask is not None:
        mask.setflags(write=False)
    return mask


def affmask(response: str, answer, extra_info: dict | None = None) -> dict:
    """``answer``: the base64 mask image."""
    point = last_point(response)
    if point is None:
        return {"score": 0.0, "details": {"error": "no coordinate pair in the response"}}
    mask = decode_mask(answer) if isinstance(answer, str) else None
    if mask is None or mask.size == 0:
        return {"score": 0.0, "details": {"error": "the answer is not a readable mask image"}}
    x, y = point
    h, w = mask.shape[:2]
    if 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0:
        col, row = int(round(x * (w - 1))), int(round(y * (h - 1)))
    else:
        col, row = int(round(x)), int(round(y))
    col, row = max(0, min(w - 1, col)), max(0, min(h - 1, row))
    value = float(mask[row, col])
    return {"score": max(0.0, min(1.0, value / 255.0)),
            "details": {"x_pred": x, "y_pred": y, "col": col, "row": row, "pixel_val": value}}


POINT_PROMPT = (
    "You will be given a textual description of a point of interest within an image. Your task is to locate "
    "this point and return its normalized coordinates.\nThe point to identify is: **{question}**\n"
    "**Instructions for Coordinate Output:**\n1.  **Format**: The output must be a single JSON array in the "
    "format `[x, y]`.\n2.  **Coordinate System**: The origin `(0, 0)` is at the top-left corner of the image.\n"
    "3.  **Normalization**:\n- `x` is the horizontal coordinate, normalized by the image's width.\n- `y` is the "
    "vertical coordinate, normalized by the image's height.\n4.  **Value Range**: Both `x` and `y` must be float "
    "values strictly between 0 and 1 (i.e., `0 < x < 1` and `0 < y < 1`).\n5.  **Strict Output**: Do not provide "
    "any text or explanation other than the coordinate array itself.\n**Example:**\n- If the image is 1000px "
    "wide and 800px high, and the point is at pixel (500, 200), the output should be `[0.5, 0.25]`.\nNow, based "
    "on the image provided and the target description above, output the coordinates.")

RECORDS = (Metric("affmask", affmask, answer="text", prompt=POINT_PROMPT, deps=(("PIL.Image", "pillow"),)),)
