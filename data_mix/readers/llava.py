"""LLaVA rows: ``id``, ``image`` (path or list), ``video``, ``conversations`` [{from, value}].

The same shape serves Qwen2.5-VL's finetuning JSON and LLaMA-Factory's ShareGPT rows with from/value turns
(whose image column is ``images`` and which may carry a top-level ``system`` text, made the first turn).

``<image>`` / ``<video>`` placeholders become content parts at their positions (interleaved
multi-image turns keep their order). A video is a video file, a folder of frame images, or a list
of frame images. LLaVA-Video rows mark their video with ``<image>``: when a row has videos, no
images and no ``<video>`` tag, its ``<image>`` tags stand for the videos.
"""

from __future__ import annotations

import os

from data_mix.badsample import BadSample
from data_mix.readers.common import (
    FRAME_EXTS,
    as_list,
    count_parts,
    resolve_media,
    sample_frame_folder,
    sample_frames,
    text_to_parts,
    with_system,
)
from data_mix.sample import Sample

ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}


def resolve_videos(raw, media_dir: str, data, frame_fps, file: str, row: int) -> list:
    """Videos of a row: a video file path, or a list of sampled frame paths per video."""
    entries = as_list(raw)
    if entries and all(isinstance(e, str) and e.lower().endswith(FRAME_EXTS) for e in entries):
        entries = [entries]  # one video given as its frames
    out: list = []
    for entry in entries:
        if isinstance(entry, list):
            out.append(sample_frames([resolve_media(f, media_dir) for f in entry], data, frame_fps))
            continue
        if not isinstance(entry, str):
            raise BadSample(file, row, "bad_record", f"video must be a path or a list of frame paths, got {entry!r}")
        path = resolve_media(entry, media_dir)
        if os.path.isdir(path):
            out.append(sample_frame_folder(path, data, frame_fps, file, row))
        elif os.path.exists(path):
            out.append(path)
        else:
            raise BadSample(file, row, "missing_media", f"video {path} does not exist")
    return out


def check_media_counts(messages: list[dict], n_images: int, n_videos: int, file: str, row: int) -> None:
    n_img, n_vid = count_parts(messages)
    if n_img != n_images:
        raise BadSample(file, row, "placeholder_mismatch", f"{n_img} <image> tag(s) but {n_images} image(s)")
    if n_vid != n_videos:
        raise BadSample(file, row, "placeholder_mismatch", f"{n_vid} <video> tag(s) but {n_videos} video(s)")


def check_assistant_turns(messages: list[dict], file: str, row: int, need_one: bool = True) -> None:
    answers = [m for m in messages if m["role"] == "assistant"]
    if need_one and not answers:
        raise BadSample(file, row, "bad_record", "no assistant turn")
    for m in answers:
        if not any(p.get("type") == "text" and p["text"].strip() for p in m["content"]):
            raise BadSample(file, row, "empty_assistant_turn", f"assistant turn {messages.index(m) + 1} has no text")


def llava_sample(rec: dict, spec, data, file: str, row: int) -> Sample:
    """One LLaVA row as a Sample (raises BadSample)."""
    convs = rec.get("conversations")
    if not isinstance(convs, list) or not convs:
        raise BadSample(file, row, "bad_record", "no 'conversations' list")
    media_dir = spec.media_dir(data)
    key = "images" if rec.get("image") in (None, "") and "images" in rec else "image"  # LLaMA-Factory: images
    if key == "image" and rec.get("images") not in (None, "", []):
        raise BadSample(file, row, "bad_record", "both 'image' and 'images': keep one")
    if not all(isinstance(p, str) for p in as_list(rec.get(key))):
        raise BadSample(file, row, "bad_record", f"'{key}' must be a path or a list of paths")
    images = [resolve_media(p, media_dir) for p in as_list(rec.get(key))]
    videos = resolve_videos(rec.get("video"), media_dir, data, spec.frame_fps, file, row)
    texts = []
    for i, turn in enumerate(convs):
        if not isinstance(turn, dict) or not isinstance(turn.get("value"), str):
            raise BadSample(file, row, "bad_record", f"turn {i + 1} needs a string 'value'")
        role = ROLES.get(str(turn.get("from", "")).lower())
        if role is None:
            raise BadSample(file, row, "bad_record", f"turn {i + 1}: unknown speaker {turn.get('from')!r} "
                            f"(expected human or gpt)")
        texts.append((role, turn["value"]))
    all_text = "".join(t for _, t in texts)
    video_tag = "<video>"
    if videos and not images and "<video>" not in all_text and all_text.count("<image>") == len(videos):
        video_tag = "<image>"
    messages = with_system(rec, [{"role": role, "content": text_to_parts(text, video_tag)} for role, text in texts],
                           file, row)
    check_media_counts(messages, len(images), len(videos), file, row)
    check_assistant_turns(messages, file, row)
    tags = spec.tags
    meta = {k: rec[k] for k in ("think", "data_source") if k in rec}
    return Sample(
        id=str(rec["id"]) if rec.get("id") is not None else f"{spec.name}:{row}", source=spec.name,
        messages=messages, images=images, videos=videos,
        level=tags.level if tags else None, ability=tags.ability if tags else None, leaf=tags.leaf if tags else None,
        file=file, row=row, meta=meta)
