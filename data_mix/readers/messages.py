"""Chat rows in the TRL style: ``messages`` [{role, content}] plus ``images`` (and ``videos``).

``content`` is a string (``<image>``/``<video>`` placeholders allowed) or a list of typed parts
(``{"type": "image"}``, ``{"type": "text", "text": ...}``). ``images`` entries are paths, or
``{"path": ..., "bytes": ...}`` as a saved HF ``Image`` column stores them (without an ``images``
column, paths inside the parts, ``{"type": "image", "image": "x.png"}``, are used) (embedded bytes are kept
as bytes in ``Sample.images``; :func:`data_mix.media.load_media` decodes them). LLaMA-Factory's ShareGPT
files with role/content turns (its ``mllm_demo.json``) are such rows; their top-level ``system`` text becomes
the first turn.
"""

from __future__ import annotations

from data_mix.badsample import BadSample
from data_mix.readers.common import as_list, resolve_media, text_to_parts, with_system
from data_mix.readers.llava import check_assistant_turns, check_media_counts, resolve_videos
from data_mix.sample import Sample

_ROLES = ("system", "user", "assistant")


def _image_entry(entry, media_dir: str, file: str, row: int):
    if isinstance(entry, str):
        return resolve_media(entry, media_dir)
    if isinstance(entry, dict):
        if entry.get("path"):
            return resolve_media(entry["path"], media_dir)
        if entry.get("bytes"):
            return bytes(entry["bytes"])
    raise BadSample(file, row, "bad_record", f"an image must be a path or {{path|bytes}}, got {type(entry).__name__}")


def _content(content, file: str, row: int, turn: int, inline_media: dict | None = None) -> list[dict]:
    if isinstance(content, str):
        return text_to_parts(content)
    if not isinstance(content, list):
        raise BadSample(file, row, "bad_record", f"message {turn}: content must be a string or a list of parts")
    parts = []
    for p in content:
        kind = p.get("type") if isinstance(p, dict) else None
        if kind == "text":
            if p.get("text"):
                parts.append({"type": "text", "text": str(p["text"])})
        elif kind in ("image", "video"):
            parts.append({"type": kind})
            inline = p.get(kind) or p.get("path")
            if isinstance(inline, str) and inline_media is not None:
                inline_media[kind].append(inline)
        else:
            raise BadSample(file, row, "bad_record", f"message {turn}: unknown content part {p!r}")
    return parts


def messages_sample(rec: dict, spec, data, file: str, row: int) -> Sample:
    """One chat row as a Sample (raises BadSample)."""
    raw = rec.get("messages")
    if not isinstance(raw, list) or not raw:
        raise BadSample(file, row, "bad_record", "no 'messages' list")
    messages = []
    inline: dict[str, list[str]] = {"image": [], "video": []}  # paths given inside the parts
    for i, m in enumerate(raw):
        if not isinstance(m, dict) or m.get("role") not in _ROLES:
            raise BadSample(file, row, "bad_record", f"message {i + 1}: role must be one of {', '.join(_ROLES)}")
        messages.append({"role": m["role"], "content": _content(m.get("content"), file, row, i + 1, inline)})
    messages = with_system(rec, messages, file, row)
    media_dir = spec.media_dir(data)
    image_col = rec.get("images", rec.get("image")) or inline["image"]
    images = [_image_entry(e, media_dir, file, row) for e in as_list(image_col)]
    video_col = rec.get("videos", rec.get("video")) or inline["video"] or None
    videos = resolve_videos(video_col, media_dir, data, spec.frame_fps, file, row)
    check_media_counts(messages, len(images), len(videos), file, row)
    check_assistant_turns(messages, file, row, need_one=False)
    tags = spec.tags
    return Sample(
        id=str(rec["id"]) if rec.get("id") is not None else f"{spec.name}:{row}", source=spec.name,
        messages=messages, images=images, videos=videos,
        level=tags.level if tags else None, ability=tags.ability if tags else None, leaf=tags.leaf if tags else None,
        file=file, row=row, meta={k: rec[k] for k in ("think",) if k in rec})
