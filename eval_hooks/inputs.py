"""Evaluation inputs as lmms-eval's model wrapper for the checkpoint's family gives them (``eval.inputs: lmms_eval``).

``eval.inputs: training`` evaluates on what training sees (``data_mix.media.load_media``: images downscaled to
``data.image_max_pixels``, 200,704 by default; a video as at most ``data.video_max_frames`` frames). The benchmark's
own numbers come from lmms-eval, which gives the model much larger images and more frames. Values and steps,
from the sources (lmms-eval 0.7.3; qwen-vl-utils 0.0.14, which lmms-eval requires):

- visuals of a record (``tasks/spatialtreebench/utils.py``, ``spatialtreebench_doc_to_visual``): a record with a
  video gives the frames of its first video only (its images are not used); otherwise its images. Frames: the
  record's ``video_info[0].frame_index``, thinned to 32 by ``np.linspace(0, n - 1, 32, dtype=int)`` when longer;
  without frame_index, 32 frames of a video longer than 240 frames, else 16, at
  ``np.linspace(0, total - 1, k, dtype=int)`` (repeats when the video is shorter than k);
- every visual, frames included, is an image, sized as the family's lmms-eval wrapper sizes it (the family's
  ``lmms_resize`` and ``lmms_processor_kwargs``, train/models/; e.g. the paper's model: re-encoded as JPEG
  quality 85, then qwen-vl-utils' ``fetch_image`` resize within that wrapper's pixel limits);
- the conversation: the wrapper's system turn (the family's ``lmms_system_prompt``: "You are a helpful
  assistant." for the Qwen wrappers; none for internvl_hf, whose template then adds its default), then one user
  turn with the visuals first and the prompt text after them, rendered with the wrapper's template arguments
  (``lmms_chat_template_kwargs``, e.g. Qwen3.5's ``enable_thinking=True``).

These are lmms-eval's *simple* wrapper (``models/simple/qwen2_5_vl.py``). ``--model qwen2_5_vl`` in lmms-eval 0.7.3
resolves to its *chat* wrapper unless ``--force_simple`` (``models/registry_v2.py``); that one skips the JPEG
re-encode and lets qwen-vl-utils and then the processor resize (same sizes on the stand-in, other pixel values).
It is not reproduced here; docs/EVAL.md ("lmms-eval's two qwen2_5_vl wrappers") says how to compare.

Differences that remain: lmms-eval decodes video with OpenCV, we with PyAV (the same frame numbers of a
constant-frame-rate file); a frame lmms-eval cannot read is dropped silently, here it is an error naming the
record; a batch is left padded here (lmms-eval's default batch of 1 has no padding).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from PIL import Image

INPUTS = ("training", "lmms_eval")
LMMS_MAX_FRAMES = 32
LMMS_SHORT_VIDEO_FRAMES, LMMS_LONG_VIDEO_AFTER = 16, 240


def reader_data(data_cfg: Any, inputs: str) -> Any:
    """The data settings to read the bench with: for ``lmms_eval``, frame lists and folders are kept whole
    (frames are chosen here, as lmms-eval chooses them); for ``training``, ``data_cfg`` unchanged."""
    if inputs == "training":
        return data_cfg
    return dataclasses.replace(data_cfg, video_max_frames=0, video_fps=0.0)


def processor_kwargs(inputs: str, family: Any = None) -> dict[str, Any]:
    """Extra processor-call arguments: those of the family's lmms-eval wrapper (its pixel limits)."""
    if inputs == "training":
        return {}
    return family.lmms_processor_kwargs()


def frame_indices(n_frames: int, frame_index: list[int] | None) -> list[int]:
    """Frame numbers lmms-eval reads from a video of ``n_frames`` frames (with the record's frame_index, if any)."""
    import numpy as np

    if frame_index:
        if len(frame_index) <= LMMS_MAX_FRAMES:
            return list(frame_index)
        return [frame_index[i] for i in np.linspace(0, len(frame_index) - 1, LMMS_MAX_FRAMES, dtype=int)]
    k = LMMS_MAX_FRAMES if n_frames > LMMS_LONG_VIDEO_AFTER else LMMS_SHORT_VIDEO_FRAMES
    return [int(i) for i in np.linspace(0, n_frames - 1, k, dtype=int)]


def _video_frames(video: Any, frame_index: list[int] | None, data_cfg: Any, sample: Any) -> list[Image.Image]:
    """The frames lmms-eval would read, as RGB images at their own size."""
    from data_mix.badsample import BadSample
    from data_mix.media import load_image

    if isinstance(video, str):
        return _decode_frames(video, frame_index, sample)
    wanted = frame_indices(len(video), frame_index)
    bad = [i for i in wanted if not 0 <= i < len(video)]
    if bad:
        raise BadSample(sample.file, sample.row, "bad_record",
                        f"frame_index {bad[:5]} outside the video's {len(video)} frames")
    return [load_image(video[i], data_cfg, sample.file, sample.row, max_pixels=0) for i in wanted]


def _decode_frames(path: str, frame_index: list[int] | None, sample: Any) -> list[Image.Image]:
    from data_mix.badsample import BadSample

    try:
        import av
    except ImportError:
        raise RuntimeError("decoding video files needs PyAV (pip install av)") from None
    try:
        with av.open(path) as container:
            n = container.streams.video[0].frames
        if not n and not frame_index:  # no frame count in the header: count by decoding
            with av.open(path) as container:
                n = sum(1 for _ in container.decode(video=0))
        wanted = frame_indices(n, frame_index)
        found: dict[int, Image.Image] = {}
        with av.open(path) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    found[i] = frame.to_image().convert("RGB")
                if i >= max(wanted):
                    break
    except (av.error.FFmpegError, IndexError, OSError) as exc:
        raise BadSample(sample.file, sample.row, "video_decode", f"{path}: {exc}") from None
    lost = sorted(set(wanted) - set(found))
    if lost:
        raise BadSample(sample.file, sample.row, "video_decode", f"{path}: frames {lost[:5]} not in the video")
    return [found[i] for i in wanted]


def lmms_inputs(sample: Any, messages: list[dict[str, Any]], data_cfg: Any,
                family: Any) -> tuple[list[dict[str, Any]], list]:
    """``(messages, images)`` of a bench sample as lmms-eval's wrapper for ``family`` (train/models/) gives them
    (see the module doc): the wrapper's system turn if it adds one, then the user turn with one image part per visual, then its text parts."""
    from data_mix.media import load_image

    if sample.videos:
        frame_index = (sample.meta.get("frame_index") or [None])[0] or None
        visuals = _video_frames(sample.videos[0], frame_index, data_cfg, sample)
    else:
        visuals = [load_image(p, data_cfg, sample.file, sample.row, max_pixels=0) for p in sample.images]
    images = [family.lmms_resize(v) for v in visuals]
    user = messages[-1]
    parts = user["content"] if isinstance(user["content"], list) else [{"type": "text", "text": user["content"]}]
    text = [p for p in parts if p.get("type") == "text"]
    earlier = [m for m in messages[:-1] if m.get("role") != "system"]
    system = [] if family.lmms_system_prompt is None else [{"role": "system", "content": family.lmms_system_prompt}]
    return [*system, *earlier, {"role": "user", "content": [{"type": "image"} for _ in images] + text}], images
