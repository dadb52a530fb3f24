"""SpatialTree-Bench records: evaluation samples and RL prompts with their metric.

Schema (as the public scorer reads it): ``question``, ``option``, ``answer``, ``question_type``,
``hint`` (JSON string: the metric's extra inputs), ``extra_info`` (JSON string: ``metricfunc`` and
``spatree0..N`` tags, the deepest being the leaf), ``image`` (list), ``video`` (list),
``video_info`` (list with ``frame_index``), ``session_id``.

As in the reference scorer: ``metric_extra`` is the parsed hint, plus ``option`` for a non-open
multichoice question; an "open" multichoice question is scored with ``meanrelativeacc``.
"""

from __future__ import annotations

import json

from data_mix.badsample import BadSample
from data_mix.readers.bench_prompts import bench_prompt
from data_mix.readers.common import as_list, resolve_media
from data_mix.readers.llava import resolve_videos
from data_mix.sample import Sample
from rewards import taxonomy
from rewards.metrics import resolve as resolve_metric


def _json_field(rec: dict, key: str, file: str, row: int) -> dict | list | str | None:
    value = rec.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except (TypeError, json.JSONDecodeError) as exc:
        raise BadSample(file, row, "bad_record", f"'{key}' is not valid JSON: {exc}") from None


def _leaf(extra: dict, spec, file: str, row: int):
    tags = [(int(k[7:]), v) for k, v in extra.items() if k.startswith("spatree") and k[7:].isdigit()]
    if not tags:
        if spec.tags:
            return taxonomy.leaf(spec.tags.leaf)
        return None
    name = str(max(tags)[1])
    try:
        return taxonomy.leaf(name)
    except KeyError as exc:
        raise BadSample(file, row, "bad_record", str(exc.args[0])) from None


def bench_sample(rec: dict, spec, data, file: str, row: int) -> Sample:
    """One benchmark record as a prompt-only Sample with its metric (raises BadSample)."""
    question = rec.get("question")
    if not isinstance(question, str) or not question.strip():
        raise BadSample(file, row, "bad_record", "no 'question'")
    if "answer" not in rec:
        raise BadSample(file, row, "bad_record", "no 'answer'")
    extra = _json_field(rec, "extra_info", file, row) or {}
    if not isinstance(extra, dict):
        raise BadSample(file, row, "bad_record", "'extra_info' must be a JSON object")
    raw_metric = extra.get("metricfunc")
    if not raw_metric:
        raise BadSample(file, row, "bad_record", "extra_info has no 'metricfunc'")
    question_type = rec.get("question_type")
    options = [str(o) for o in as_list(rec.get("option"))]
    hint = _json_field(rec, "hint", file, row)
    metric_extra = dict(hint) if isinstance(hint, dict) else ({} if hint is None else {"hint": hint})
    metricfunc, added = resolve_metric(raw_metric, question_type, options)  # the open-MCQ rule lives in the record
    metric_extra.update(added)
    node = _leaf(extra, spec, file, row)
    level = node.path[0] if node else None
    media_dir = spec.media_dir(data)
    images = [resolve_media(p, media_dir) for p in as_list(rec.get("image"))]
    videos = resolve_videos(as_list(rec.get("video")) or None, media_dir, data, spec.frame_fps, file, row)
    frame_index = [v.get("frame_index", []) if isinstance(v, dict) else [] for v in as_list(rec.get("video_info"))]
    content = [{"type": "image"} for _ in images] + [{"type": "video"} for _ in videos]
    content.append({"type": "text", "text": bench_prompt(question, options, raw_metric, extra.get("spatree0"))})
    sid = rec.get("id", rec.get("session_id"))
    meta = {"session_id": rec.get("session_id"), "question": question, "option": options,
            "extra_info": extra, "bench_metricfunc": raw_metric}
    if any(frame_index):
        meta["frame_index"] = frame_index
    return Sample(
        id=str(sid) if sid is not None else f"{spec.name}:{row}", source=spec.name,
        messages=[{"role": "user", "content": content}], images=images, videos=videos,
        level=level, ability=node.path[1] if node else None, leaf=node.name if node else None,
        metricfunc=metricfunc, answer=rec["answer"], metric_extra=metric_extra,
        question_type=question_type, file=file, row=row, meta=meta)
