"""Pieces shared by the readers: placeholders to content parts, media paths, video frame folders."""

from __future__ import annotations

import os
import re

import numpy as np

from data_mix.badsample import BadSample

_PLACEHOLDER = re.compile(r"(<image>|<video>)")
_DIGITS = re.compile(r"(\d+)")
FRAME_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def text_to_parts(text: str, video_tag: str = "<video>") -> list[dict]:
    """Split text at ``<image>`` / ``<video>`` into typed content parts, placeholders in place.

    ``video_tag`` names the tag that stands for a video (LLaVA-Video rows use ``<image>`` for it).
    Newlines touching a placeholder are dropped; empty text pieces are dropped.
    """
    parts: list[dict] = []
    pieces = _PLACEHOLDER.split(text)
    for i, piece in enumerate(pieces):
        if piece in ("<image>", "<video>"):
            parts.append({"type": "video" if piece == video_tag else "image"})
            continue
        if i > 0:
            piece = piece.lstrip("\n")
        if i < len(pieces) - 1:
            piece = piece.rstrip("\n")
        if piece:
            parts.append({"type": "text", "text": piece})
    return parts


def with_system(rec: dict, messages: list[dict], file: str, row: int) -> list[dict]:
    """``messages`` with the row's top-level ``system`` text (LLaMA-Factory's ShareGPT column) as the first turn."""
    system = rec.get("system")
    if system is None or system == "":
        return messages
    if not isinstance(system, str):
        raise BadSample(file, row, "bad_record", f"'system' must be a string, got {type(system).__name__}")
    if messages and messages[0]["role"] == "system":
        raise BadSample(file, row, "bad_record", "both a top-level 'system' and a system turn: keep one")
    return [{"role": "system", "content": [{"type": "text", "text": system}]}, *messages]


def count_parts(messages: list[dict]) -> tuple[int, int]:
    """(image parts, video parts) over all messages."""
    n_img = n_vid = 0
    for m in messages:
        for p in m["content"]:
            n_img += p.get("type") == "image"
            n_vid += p.get("type") == "video"
    return n_img, n_vid


def message_text(message: dict) -> str:
    return "".join(p.get("text", "") for p in message["content"] if p.get("type") == "text")


def resolve_media(path: str, media_dir: str) -> str:
    path = os.path.expanduser(str(path))
    return path if os.path.isabs(path) else os.path.join(media_dir, path)


def as_list(value) -> list:
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in _DIGITS.split(name)]


def sample_frame_folder(folder: str, data, frame_fps: float | None, file: str, row: int) -> list[str]:
    """Frame paths of a folder of frame images, sampled at ``data.video_fps`` (when the folder's own
    rate ``frame_fps`` is known) and evenly thinned to at most ``data.video_max_frames``."""
    try:
        names = sorted((n for n in os.listdir(folder) if n.lower().endswith(FRAME_EXTS)), key=natural_key)
    except FileNotFoundError:
        raise BadSample(file, row, "missing_media", f"video frame folder {folder} does not exist") from None
    if not names:
        raise BadSample(file, row, "missing_media", f"video frame folder {folder} has no frame images")
    frames = [os.path.join(folder, n) for n in names]
    return sample_frames(frames, data, frame_fps)


def sample_frames(frames: list, data, frame_fps: float | None) -> list:
    """Every (frame_fps / video_fps)-th frame, then at most video_max_frames evenly spaced ones."""
    if frame_fps and data.video_fps > 0 and frame_fps > data.video_fps:
        step = frame_fps / data.video_fps
        idx = np.unique(np.floor(np.arange(0, len(frames), step)).astype(int))
        frames = [frames[i] for i in idx]
    if len(frames) > data.video_max_frames > 0:
        idx = np.linspace(0, len(frames) - 1, data.video_max_frames).round().astype(int)
        frames = [frames[i] for i in idx]
    return frames
