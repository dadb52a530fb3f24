"""The one entry point for scoring: ``score`` (a metric on a response) and ``score_record`` (a raw
SpatialTree-Bench record, as the benchmark's ``process_results`` does it)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from typing import Any

from rewards.did_you_mean import did_you_mean
from rewards.metrics import METRICS, REGISTRY, resolve
from rewards.metrics.deps import MissingMetricDependency

_ERROR_CHARS = 300


def _unknown_metric(name: object) -> ValueError:
    return ValueError(f"unknown metricfunc {name!r}{did_you_mean(name, METRICS)} (known: {', '.join(METRICS)})")


def as_text(response: Any) -> str:
    """A response as text: None -> "", bytes decoded as UTF-8 with invalid bytes replaced."""
    if response is None:
        return ""
    if isinstance(response, (bytes, bytearray)):
        return bytes(response).decode("utf-8", "replace")
    return response if isinstance(response, str) else str(response)


def as_mapping(extra_info: Any, what: str = "extra_info") -> dict:
    """``extra_info`` as a dict: None or "" -> {}, JSON text decoded, mappings copied."""
    if extra_info is None or extra_info == "":
        return {}
    if isinstance(extra_info, (str, bytes)):
        try:
            extra_info = json.loads(extra_info)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{what} is not JSON: {exc}") from exc
        if extra_info is None:
            return {}
    if not isinstance(extra_info, Mapping):
        raise ValueError(f"{what} must be a JSON object, got {type(extra_info).__name__}")
    return dict(extra_info)


def score(metricfunc: str, response: Any, answer: Any, extra_info: Any = None, *,
          judge: Callable[[list[dict]], str] | None = None) -> dict:
    """Score ``response`` with the SpatialTree-Bench metric ``metricfunc``.

    ``answer`` and ``extra_info`` are what the benchmark stores: the answer text (an option letter, a number,
    JSON for gravity, a base64 mask for affmask) and the metric's extra inputs (the record's hint, plus
    ``option`` for multiple choice), as a dict or JSON text. ``judge`` is used by the judged metrics (``Metric.needs_judge``) only.

    Returns ``{"score": float in [0, 1], "details": {...}}``. Whatever the response, no exception: a response
    the metric cannot read, or input that makes the metric fail, scores 0 with ``details["error"]``.
    Raises ValueError only for caller errors: an unknown ``metricfunc`` or an ``extra_info`` that is not
    a JSON object; and ImportError (MissingMetricDependency) when the metric's package cannot be imported.
    """
    record = REGISTRY.get(metricfunc)
    if record is None:
        raise _unknown_metric(metricfunc)
    extra = as_mapping(extra_info)
    text = as_text(response)
    try:
        result = record.score(text, answer, extra, judge=judge) if record.needs_judge else record.score(text, answer,
                                                                                                        extra)
        value = float(result["score"])
        details = dict(result.get("details") or {})
    except MissingMetricDependency:  # not the model's fault: the environment lacks the metric's package
        raise
    except Exception as exc:  # a reward must never raise on model output
        return {"score": 0.0, "details": {"error": f"{type(exc).__name__}: {exc}"[:_ERROR_CHARS]}}
    if not math.isfinite(value):
        details["nonfinite"] = True
        value = 0.0
    return {"score": min(1.0, max(0.0, value)), "details": details}


def _hint(record: Mapping) -> dict:
    hint = record.get("hint")
    try:
        return as_mapping(hint, "hint")
    except ValueError as exc:
        raise ValueError(f"record {record.get('session_id', '?')}: {exc}") from exc


def resolve_record(record: Mapping) -> tuple[str | None, dict]:
    """(metricfunc, metric extra inputs) of a raw benchmark record, as ``process_results`` resolves them:
    the hint's JSON; ``option`` added for multiple choice; an "open" multiple-choice question is numeric
    (``meanrelativeacc``). metricfunc is None when the record names none."""
    info = as_mapping(record.get("extra_info"), "extra_info")
    metricfunc, added = resolve(info.get("metricfunc"), record.get("question_type"), record.get("option"))
    return metricfunc, {**_hint(record), **added}


def record_tags(record: Mapping) -> dict:
    """The record's hierarchy tags (``spatree0`` = level, ..., the deepest = leaf)."""
    info = as_mapping(record.get("extra_info"), "extra_info")
    return {k: v for k, v in info.items() if k.startswith("spatree")}


def score_record(record: Mapping, response: Any, *, judge: Callable[[list[dict]], str] | None = None) -> dict:
    """Score a response to a raw SpatialTree-Bench record (fields: answer, option, question_type, hint and
    extra_info as JSON text). Like the benchmark's ``process_results``, a record whose metricfunc is unknown
    scores 0 (with ``details["error"]``). Returns ``{"score", "details", "metricfunc", "tags"}``."""
    metricfunc, extra = resolve_record(record)
    tags = record_tags(record)
    if metricfunc not in METRICS:
        return {"score": 0.0, "details": {"error": f"unknown metricfunc {metricfunc!r}"},
                "metricfunc": metricfunc, "tags": tags}
    result = score(metricfunc, response, record.get("answer"), extra, judge=judge)
    return {**result, "metricfunc": metricfunc, "tags": tags}


def reward_columns(record: Mapping) -> dict:
    """The GRPO dataset columns the reward functions route on, from a raw benchmark record:
    ``metricfunc``, ``answer``, ``metric_extra`` (JSON text) and ``level`` (L1..L4, from ``spatree0``)."""
    metricfunc, extra = resolve_record(record)
    if metricfunc not in METRICS:
        raise _unknown_metric(metricfunc)
    level = record_tags(record).get("spatree0")
    return {"metricfunc": metricfunc, "answer": record.get("answer"), "metric_extra": json.dumps(extra),
            "level": level}
