"""Writing items as LLaVA SFT rows and SpatialTree-Bench records, with their images.

Media paths in rows are relative to the media root the rows are read against (POSIX separators).
Images: ``{media_dir}/{id}_{k}.png`` (k = view number from 0). Videos: a folder
``{media_dir}/{id}/`` holding ``frame_000.png, frame_001.png, ...`` (one frame per second), and the
LLaVA row's ``"video"`` is that folder.
"""

from __future__ import annotations

import io
import json
from typing import Any, TextIO

import numpy as np
from PIL import Image

from rewards.taxonomy import leaf as taxonomy_leaf

from .tasks import TASKS, Item
from .tasks.base import MCQ_INSTRUCTION

ENGINE_SOURCE = "spatialtree-train synthetic engine"


def png_bytes(arr: np.ndarray) -> bytes:
    """PNG encoding of an RGB array (no metadata, so equal pixels give equal bytes)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def media_files(item: Item, sample_id: str, media_dir: str) -> tuple[dict[str, bytes], list[str], str | None]:
    """The item's images (or video frames) as {relative path: PNG bytes}, the image paths in view
    order, and the video folder (None without a video)."""
    files: dict[str, bytes] = {}
    images = []
    for k, arr in enumerate(item.images):
        rel = f"{media_dir}/{sample_id}_{k}.png"
        files[rel] = png_bytes(arr)
        images.append(rel)
    video = None
    if item.video is not None:
        video = f"{media_dir}/{sample_id}"
        for k, arr in enumerate(item.video):
            files[f"{video}/frame_{k:03d}.png"] = png_bytes(arr)
    return files, images, video


def human_prompt(item: Item) -> str:
    """The first user turn of an SFT row: media placeholders, question, options and instruction."""
    if item.video is not None:
        prefix = "<video>\n"
    elif len(item.images) == 1:
        prefix = "<image>\n"
    else:
        prefix = "".join(f"Image {k + 1}: <image>\n" for k in range(len(item.images)))
    text = prefix + item.question
    if item.options:
        text += "\n" + "\n".join(item.options) + "\n" + MCQ_INSTRUCTION
    return text


def llava_row(item: Item, sample_id: str, images: list[str], video: str | None) -> dict[str, Any]:
    row: dict[str, Any] = {"id": sample_id}
    if video is not None:
        row["video"] = video
    else:
        row["image"] = images[0] if len(images) == 1 else images
    conv = [{"from": "human", "value": human_prompt(item)}, {"from": "gpt", "value": item.sft_reply}]
    for q, a in item.extra_turns:
        conv += [{"from": "human", "value": q}, {"from": "gpt", "value": a}]
    row["conversations"] = conv
    if item.think:
        row["think"] = item.think
    return row


def spatree_tags(leaf_name: str) -> dict[str, str]:
    """``spatree0/1/2`` for a leaf: level, ability, leaf, spaces removed as the benchmark stores them."""
    node = taxonomy_leaf(leaf_name)
    return {f"spatree{i}": part.replace(" ", "") for i, part in enumerate(node.path)}


def bench_row(item: Item, sample_id: str, images: list[str]) -> dict[str, Any]:
    spec = TASKS[item.task]
    if not spec.leaf or not item.metricfunc:
        raise ValueError(f"task {item.task!r} has no SpatialTree-Bench form (general data is LLaVA only)")
    extra = {"metricfunc": item.metricfunc, **spatree_tags(spec.leaf), "task": item.task, "kind": item.kind,
             "source": ENGINE_SOURCE}
    return {
        "question": item.question,
        "option": list(item.options),
        "answer": item.answer,
        "question_type": item.question_type,
        "hint": json.dumps(item.hint, ensure_ascii=False),
        "extra_info": json.dumps(extra, ensure_ascii=False),
        "image": list(images),
        "video": [],
        "video_info": [],
        "session_id": sample_id,
    }


def scene_row(item: Item, sample_id: str) -> dict[str, Any]:
    """Geometry behind a sample's answer (``--scenes``): for audits and independent checks."""
    return {"id": sample_id, "task": item.task, "kind": item.kind, "answer": item.answer, "scene": item.scene}


def _plain(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    raise TypeError(f"not JSON serializable: {type(x).__name__}")


def dumps(row: dict[str, Any]) -> str:
    return json.dumps(row, ensure_ascii=False, default=_plain)


def dump(row: dict[str, Any], fh: TextIO) -> None:
    fh.write(dumps(row) + "\n")
