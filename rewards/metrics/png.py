"""A small PNG reader (numpy + zlib) for affordance masks, so scoring plain PNG masks needs neither OpenCV nor Pillow.

Reads every non-interlaced PNG (gray, gray+alpha, RGB, RGBA, palette; 1-16 bits) into an 8-bit grayscale
array the way OpenCV's ``imdecode(..., IMREAD_GRAYSCALE)`` does: low bit depths are scaled to 0-255,
16-bit samples keep their high byte, alpha is dropped, and colour becomes luma with libpng's fixed-point
BT.601 weights (what OpenCV asks libpng for). Interlaced PNGs and other formats go to Pillow (affmask's
declared dependency, rewards/metrics/deps.py: a missing Pillow is an ImportError, not a 0 score).
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from rewards.metrics.deps import require

_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}
_MAX_PIXELS = 64 * 1024 * 1024  # refuse absurd headers instead of allocating gigabytes


class PNGError(ValueError):
    """Not a PNG this reader handles."""


def _chunks(data: bytes):
    """(type, body) of each chunk up to IEND. Like libpng (and so OpenCV), a truncated file, a missing IEND
    or a bad CRC on a critical chunk makes the image unreadable."""
    pos = len(_SIGNATURE)
    while True:
        if pos + 12 > len(data):
            raise PNGError("truncated PNG (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        end = pos + 8 + length
        if end + 4 > len(data):
            raise PNGError(f"truncated PNG chunk {kind!r}")
        body = data[pos + 8:end]
        if kind[0:1].isupper() and zlib.crc32(kind + body) != struct.unpack(">I", data[end:end + 4])[0]:
            raise PNGError(f"CRC error in PNG chunk {kind!r}")
        yield kind, body
        if kind == b"IEND":
            return
        pos = end + 4


def _paeth_row(line: np.ndarray, prev: np.ndarray, bpp: int) -> None:
    raw = line.tolist()
    up = prev.tolist()
    for i in range(len(raw)):
        a = raw[i - bpp] if i >= bpp else 0
        b = up[i]
        c = up[i - bpp] if i >= bpp else 0
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        raw[i] = (raw[i] + pred) & 0xFF
    line[:] = raw


def _average_row(line: np.ndarray, prev: np.ndarray, bpp: int) -> None:
    raw = line.tolist()
    up = prev.tolist()
    for i in range(len(raw)):
        left = raw[i - bpp] if i >= bpp else 0
        raw[i] = (raw[i] + ((left + up[i]) >> 1)) & 0xFF
    line[:] = raw


def _unfilter(data: bytes, height: int, stride: int, bpp: int) -> np.ndarray:
    rows = np.frombuffer(data, dtype=np.uint8)
    if rows.size < height * (stride + 1):
        raise PNGError("image data is shorter than the header says")
    rows = rows[: height * (stride + 1)].reshape(height, stride + 1)
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.uint8)
    for y in range(height):
        kind, line = rows[y, 0], rows[y, 1:].copy()
        if kind == 1:  # Sub: running sum per byte lane
            lanes = np.zeros(((stride + bpp - 1) // bpp) * bpp, dtype=np.uint64)
            lanes[:stride] = line
            line = (lanes.reshape(-1, bpp).cumsum(axis=0) & 0xFF).reshape(-1)[:stride].astype(np.uint8)
        elif kind == 2:
            line = line + prev
        elif kind == 3:
            _average_row(line, prev, bpp)
        elif kind == 4:
            _paeth_row(line, prev, bpp)
        elif kind != 0:
            raise PNGError(f"unknown filter type {kind} in row {y}")
        out[y] = line
        prev = line
    return out


def _samples(rows: np.ndarray, width: int, channels: int, depth: int) -> np.ndarray:
    """(height, width, channels) integer samples from unfiltered rows."""
    height = rows.shape[0]
    if depth == 8:
        return rows[:, : width * channels].reshape(height, width, channels)
    if depth == 16:
        return rows[:, : width * channels * 2].reshape(height, width, channels, 2)[..., 0]  # high byte
    bits = np.unpackbits(rows, axis=1)[:, : width * channels * depth]
    bits = bits.reshape(height, width * channels, depth)
    weights = (1 << np.arange(depth - 1, -1, -1)).astype(np.uint8)
    return (bits * weights).sum(axis=2).astype(np.uint8).reshape(height, width, channels)


def rgb_to_gray(rgb: np.ndarray) -> np.ndarray:
    """libpng's RGB -> gray as OpenCV's PNG reader requests it (weights 0.299, 0.587 in 15-bit fixed point,
    truncated): (9797 R + 19234 G + 3737 B) >> 15. Checked against cv2.imdecode(IMREAD_GRAYSCALE)."""
    rgb = rgb.astype(np.uint32)
    return ((rgb[..., 0] * 9797 + rgb[..., 1] * 19234 + rgb[..., 2] * 3737) >> 15).astype(np.uint8)


def decode_png_gray(data: bytes) -> np.ndarray:
    """An 8-bit grayscale (height, width) array from PNG bytes; raises PNGError on anything unreadable."""
    if not data.startswith(_SIGNATURE):
        raise PNGError("not a PNG")
    header, palette, idat = None, None, []
    for kind, body in _chunks(data):
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body[:13]) if len(body) >= 13 else None
        elif kind == b"PLTE":
            palette = np.frombuffer(body[: len(body) // 3 * 3], dtype=np.uint8).reshape(-1, 3)
        elif kind == b"IDAT":
            idat.append(body)
    if header is None:
        raise PNGError("no IHDR chunk")
    width, height, depth, color, _comp, _filter, interlace = header
    if color not in _CHANNELS or depth not in (1, 2, 4, 8, 16) or width == 0 or height == 0:
        raise PNGError(f"unsupported PNG (colour type {color}, bit depth {depth})")
    if interlace:
        raise _Interlaced("interlaced PNG")
    if width * height > _MAX_PIXELS:
        raise PNGError(f"PNG of {width}x{height} is too large for a mask")
    channels = _CHANNELS[color]
    bits_per_pixel = channels * depth
    stride = (width * bits_per_pixel + 7) // 8
    try:
        raw = zlib.decompress(b"".join(idat))
    except zlib.error as exc:
        raise PNGError(f"corrupt image data: {exc}") from exc
    samples = _samples(_unfilter(raw, height, stride, max(1, bits_per_pixel // 8)), width, channels, depth)
    if color == 3:
        if palette is None:
            raise PNGError("palette image without PLTE")
        index = samples[..., 0]
        if int(index.max()) >= len(palette):
            raise PNGError("palette index out of range")
        return rgb_to_gray(palette[index])
    if color in (0, 4):
        gray = samples[..., 0]
        if depth < 8:
            gray = (gray.astype(np.uint16) * (255 // ((1 << depth) - 1))).astype(np.uint8)
        return np.ascontiguousarray(gray)
    return rgb_to_gray(samples[..., :3])


class _Interlaced(PNGError):
    pass


def _pil_gray(data: bytes) -> np.ndarray | None:
    """Decode with Pillow and convert to gray as above; None when Pillow cannot read the data."""
    import io

    Image = require("affmask", "PIL.Image")  # a missing Pillow is an ImportError, never an unreadable mask
    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.mode in ("I;16", "I;16B", "I"):
                return (np.asarray(img).astype(np.int64) >> 8).clip(0, 255).astype(np.uint8)
            if img.mode == "LA":
                return np.asarray(img)[..., 0].copy()
            if img.mode in ("1", "L"):
                return np.asarray(img.convert("L"))
            return rgb_to_gray(np.asarray(img.convert("RGB")))
    except Exception:
        return None


def decode_mask_image(data: bytes) -> np.ndarray | None:
    """Grayscale mask from image bytes, None if unreadable. PNG is read here (a damaged PNG is unreadable,
    as libpng, and so the benchmark's OpenCV, rejects it); interlaced PNGs and other formats go through
    Pillow."""
    if data.startswith(_SIGNATURE):
        try:
            return decode_png_gray(data)
        except _Interlaced:
            return _pil_gray(data)
        except PNGError:
            return None
    return _pil_gray(data)
