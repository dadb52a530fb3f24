"""Opening a sample's images and videos, with checks that name the file, row and reason.

``image_size`` reads only the header (cheap: used to count vision tokens for every drawn sample);
``load_media`` decodes. Images larger than ``data.image_max_pixels`` are downscaled (aspect kept)
on load; images beyond PIL's decompression-bomb limit are rejected (``image_too_large``).
Video files are decoded with PyAV when it is installed (``pip install av``); folders or lists of
frame images need nothing extra.
"""

from __future__ import annotations

import io
import math
import os
import warnings

from PIL import Image, UnidentifiedImageError

from data_mix.badsample import BadSample


def _src(item) -> str:
    return "<embedded image bytes>" if isinstance(item, (bytes, bytearray)) else str(item)


def _open(item, file: str, row: int) -> Image.Image:
    """A lazily decoded PIL image; raises BadSample for missing, empty, unreadable or enormous files."""
    if isinstance(item, (bytes, bytearray)):
        if not item:
            raise BadSample(file, row, "empty_media_file", "embedded image has 0 bytes")
        fh = io.BytesIO(item)
    else:
        try:
            if os.path.getsize(item) == 0:
                raise BadSample(file, row, "empty_media_file", f"{item} has 0 bytes")
        except (FileNotFoundError, NotADirectoryError):
            raise BadSample(file, row, "missing_media", f"image {item} does not exist") from None
        fh = item
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(fh)
    except Image.DecompressionBombError as exc:
        raise BadSample(file, row, "image_too_large", f"{_src(item)}: {exc}") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise BadSample(file, row, "unreadable_image", f"{_src(item)}: {exc}") from None


def image_size(item, file: str = "", row: int = -1) -> tuple[int, int]:
    """(width, height) from the header only."""
    img = _open(item, file, row)
    try:
        return img.size
    finally:
        img.close()


def fit_within(w: int, h: int, max_pixels: int) -> tuple[int, int]:
    """The largest (w, h) with the same aspect ratio and at most ``max_pixels`` pixels."""
    if max_pixels <= 0 or w * h <= max_pixels:
        return w, h
    scale = math.sqrt(max_pixels / (w * h))
    return max(1, int(w * scale)), max(1, int(h * scale))


def loaded_image_size(item, data, file: str = "", row: int = -1, max_pixels: int | None = None) -> tuple[int, int]:
    """(w, h) that :func:`load_image` returns for ``item``, from the header alone (JPEG draft scaling included)."""
    img = _open(item, file, row)
    limit = data.image_max_pixels if max_pixels is None else max_pixels
    tw, th = fit_within(*img.size, limit)
    if (tw, th) == img.size:
        return img.size
    img.draft("RGB", (tw, th))
    size = img.size
    if size != (tw, th) and size[0] * size[1] > limit > 0:
        size = fit_within(*size, limit)
    return size


def processor_media_kwargs(images: list, videos: list, video_fps: float) -> dict:
    """Media arguments of a processor call (training's encoder and the token counter use the same): frames arrive
    already sampled at ``data.video_fps``; the processor is told so (the temporal rope spacing and timestamps are
    right) and does not sample again."""
    kwargs: dict = {}
    if images:
        kwargs["images"] = images
    if videos:
        from transformers.video_utils import VideoMetadata

        kwargs["videos"] = videos
        # frames_indices: Qwen3-VL's processor writes a timestamp per frame pair from them
        kwargs["video_metadata"] = [VideoMetadata(total_num_frames=len(v), fps=video_fps,
                                                  frames_indices=list(range(len(v)))) for v in videos]
        kwargs["do_sample_frames"] = False
    return kwargs


def load_image(item, data, file: str = "", row: int = -1, max_pixels: int | None = None) -> Image.Image:
    """Decode one image to RGB, downscaled within ``max_pixels`` (default ``data.image_max_pixels``)."""
    img = _open(item, file, row)
    limit = data.image_max_pixels if max_pixels is None else max_pixels
    try:
        tw, th = fit_within(*img.size, limit)
        if (tw, th) != img.size:
            img.draft("RGB", (tw, th))  # JPEG decodes at reduced scale: less memory for huge photos
        img.load()
    except Image.DecompressionBombError as exc:
        raise BadSample(file, row, "image_too_large", f"{_src(item)}: {exc}") from None
    except OSError as exc:
        reason = "truncated_image" if "truncat" in str(exc).lower() else "unreadable_image"
        raise BadSample(file, row, reason, f"{_src(item)}: {exc}") from None
    img = img.convert("RGB")
    if img.size != (tw, th) and img.width * img.height > limit > 0:
        img = img.resize(fit_within(*img.size, limit), Image.Resampling.BICUBIC)
    return img


def _av():
    try:
        import av
    except ImportError:
        raise RuntimeError("decoding video files needs PyAV (pip install av); or give each video as a folder "
                           "or list of frame images") from None
    return av


def video_file_info(path: str, data, file: str = "", row: int = -1) -> tuple[int, int, int]:
    """(frames that sampling at data.video_fps keeps, width, height) of a video file, from its header."""
    if not os.path.exists(path):
        raise BadSample(file, row, "missing_media", f"video {path} does not exist")
    if os.path.getsize(path) == 0:
        raise BadSample(file, row, "empty_media_file", f"{path} has 0 bytes")
    av = _av()
    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            w, h = stream.codec_context.width, stream.codec_context.height
            duration = float(stream.duration * stream.time_base) if stream.duration else \
                (container.duration or 0) / 1e6
            fps = float(stream.average_rate or 0)
            n_native = stream.frames or int(duration * fps)
    except (av.error.FFmpegError, IndexError) as exc:
        raise BadSample(file, row, "video_decode", f"{path}: {exc}") from None
    n = int(duration * data.video_fps) + 1 if duration > 0 and data.video_fps > 0 else n_native
    n = min(max(n, 1), n_native or n)
    if data.video_max_frames > 0:
        n = min(n, data.video_max_frames)
    return n, w, h


def load_video_file(path: str, data, file: str = "", row: int = -1,
                    frame_index: list[int] | None = None) -> list[Image.Image]:
    """Frames of a video file: ``frame_index`` if given, else one per 1/video_fps seconds; at most
    ``data.video_max_frames``, evenly spaced."""
    video_file_info(path, data, file, row)  # existence and header checks
    av = _av()
    wanted = set(frame_index or [])
    frames: list[Image.Image] = []
    next_t = 0.0
    try:
        with av.open(path) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if frame_index:
                    keep = i in wanted
                else:
                    t = float(frame.time or 0.0)
                    keep = data.video_fps <= 0 or t + 1e-6 >= next_t
                    if keep and data.video_fps > 0:
                        next_t = t + 1.0 / data.video_fps
                if keep:
                    img = frame.to_image().convert("RGB")
                    frames.append(img.resize(fit_within(*img.size, data.video_max_pixels)))
    except av.error.FFmpegError as exc:
        raise BadSample(file, row, "video_decode", f"{path}: {exc}") from None
    if not frames:
        raise BadSample(file, row, "video_decode", f"{path}: no frames decoded")
    if len(frames) > data.video_max_frames > 0:
        step = (len(frames) - 1) / (data.video_max_frames - 1) if data.video_max_frames > 1 else 0
        frames = [frames[round(k * step)] for k in range(data.video_max_frames)]
    return frames


def load_media(sample, data) -> tuple[list[Image.Image], list[list[Image.Image]]]:
    """(images, videos) of a sample as RGB PIL images, in placeholder order; raises BadSample."""
    images = [load_image(p, data, sample.file, sample.row) for p in sample.images]
    videos = []
    frame_index = sample.meta.get("frame_index") or []
    for k, video in enumerate(sample.videos):
        if isinstance(video, str):
            idx = frame_index[k] if k < len(frame_index) else None
            videos.append(load_video_file(video, data, sample.file, sample.row, idx))
        else:
            videos.append([load_image(f, data, sample.file, sample.row, data.video_max_pixels) for f in video])
    return images, videos
