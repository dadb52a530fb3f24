"""Sample images as small JPEG thumbnails written beside the page (``report_files/``), videos as a few frames.

The page refers to them by relative path, so the page and its folder move together. A medium that cannot be
shown (a file gone, an embedded image, a video without PyAV) becomes a one-line reason on the page.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

THUMB_PX = 160
"""Longest side of a thumbnail in pixels (project choice: readable in a grid, small on disk)."""
VIDEO_FRAMES = 4
"""Frames shown per video, evenly spaced (project choice)."""


class Thumbnails:
    """Writes each source medium's thumbnail once into ``folder``; returns paths relative to the page."""

    def __init__(self, page_dir: Path, folder: str = "report_files"):
        self.page_dir = Path(page_dir)
        self.folder = folder
        self._done: dict[str, dict[str, Any]] = {}

    def _name(self, src: str, index: int = 0) -> str:
        return hashlib.sha1(f"{src}#{index}".encode()).hexdigest()[:16] + ".jpg"

    def _save(self, img, name: str) -> str:
        out = self.page_dir / self.folder / name
        if not out.is_file():
            out.parent.mkdir(parents=True, exist_ok=True)
            img = img.convert("RGB")
            img.thumbnail((THUMB_PX, THUMB_PX))
            img.save(out, "JPEG", quality=80)
        return f"{self.folder}/{name}"

    def image(self, src: Any, base: Path | None = None) -> dict[str, Any]:
        """``{"src": relative path}`` or ``{"error": reason}`` for one image reference."""
        if not isinstance(src, str):
            return {"error": "embedded image bytes (no file to point at)"}
        key = f"i:{src}"
        if key not in self._done:
            self._done[key] = self._image(src, base)
        return self._done[key]

    def _image(self, src: str, base: Path | None) -> dict[str, Any]:
        from PIL import Image, UnidentifiedImageError

        path = Path(src)
        if not path.is_absolute() and base is not None:
            path = base / path
        try:
            with Image.open(path) as img:
                return {"src": self._save(img, self._name(str(path))), "title": str(src)}
        except (OSError, UnidentifiedImageError, ValueError) as exc:
            return {"error": f"{src}: {type(exc).__name__}: {exc}"}

    def video(self, video: Any, base: Path | None = None) -> list[dict[str, Any]]:
        """Up to VIDEO_FRAMES frame thumbnails of one video (a list of frame files, or a video file)."""
        if isinstance(video, (list, tuple)):
            frames = list(video)
            if len(frames) > VIDEO_FRAMES:
                step = (len(frames) - 1) / (VIDEO_FRAMES - 1)
                frames = [frames[round(k * step)] for k in range(VIDEO_FRAMES)]
            return [self.image(f, base) for f in frames]
        if not isinstance(video, str):
            return [{"error": "embedded video (no file to point at)"}]
        key = f"v:{video}"
        if key not in self._done:
            self._done[key] = {"frames": self._video_file(video)}
        return self._done[key]["frames"]

    def _video_file(self, src: str) -> list[dict[str, Any]]:
        try:
            import av
        except ImportError:
            return [{"error": f"{src}: video file (frames need PyAV: pip install av)"}]
        try:
            with av.open(src) as container:
                frames = [f.to_image() for f in container.decode(video=0)]
        except (OSError, av.error.FFmpegError) as exc:
            return [{"error": f"{src}: {exc}"}]
        if not frames:
            return [{"error": f"{src}: no frames decoded"}]
        if len(frames) > VIDEO_FRAMES:
            step = (len(frames) - 1) / (VIDEO_FRAMES - 1)
            frames = [frames[round(k * step)] for k in range(VIDEO_FRAMES)]
        return [{"src": self._save(img, self._name(src, i)), "title": f"{src} frame {i}"}
                for i, img in enumerate(frames)]
