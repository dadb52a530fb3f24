"""Near-duplicate tests of decontamination: a perceptual image hash and question similarity.

Why: an exact test (same bytes, same words) misses a bench image re-encoded as JPEG or resized by a pixel, and a
bench question reworded. Both tests here are cheap and stated with their thresholds (project choices, measured
on a planted set: docs/DATA.md, ``tests/test_decontam_near.py``):

- Image: pHash (perceptual hash) of the image in grayscale at 32x32: the signs of its 63 lowest 2-D DCT
  frequencies against their median. Two images are near duplicates when at most :data:`HAMMING` of the 63 bits
  differ. It survives re-encoding and small resizes; crops move the frequencies and are mostly NOT found.
  (A dHash, tried first, moved 5-15 bits under re-encoding on the engine's flat-shaded renders, as much as two
  different renders differ.)
- Question: the content words of the bench question (normalised, a short stop-word list removed, a trailing
  plural ``s`` dropped) and the share of them that occur in the training row's user text (containment). A row
  contains the question when that share is at least :data:`CONTAINMENT`. Word order does not matter; synonyms
  lower the share (one synonym of four content words still passes; two do not). The bench's questions are
  indexed for this test in :mod:`data_mix.question_index`.
"""

from __future__ import annotations

import io
import re
import unicodedata
from collections import OrderedDict

HAMMING = 6
"""Largest number of differing pHash bits (of 63) of near-duplicate images (project choice, measured on the
engine's renders, which look much alike: a JPEG re-encode moves 0-4 bits, a 1-pixel resize up to 8, two
different renders differ in 8 or more)."""
CONTAINMENT = 0.75
"""Smallest share of a bench question's content words found in a training row for the row to contain it
(project choice)."""

_NOT_WORD = re.compile(r"[\W_]+")
_TAGS = re.compile(r"<image>|<video>")
STOP_WORDS = frozenset("""
a an the is are was were be been being of in on at to from by for with as and or but if then than that this these
those it its there here which what who whom whose how do does did can could would should will shall may might
please answer question following given image images picture video shown show you your me my i we our they them
their he she his her about per each
""".split())
"""Function words only: spatial words (above, below, left, closer ...) carry a bench question's meaning."""


def normalize(text: str) -> str:
    """Text as compared: NFKC, case folded, media tags dropped, non-alphanumeric runs -> one space."""
    text = _TAGS.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    return _NOT_WORD.sub(" ", text).strip()


def content_words(text: str) -> frozenset[str]:
    """The words that carry a question's meaning: normalised, stop words left out, plural ``s`` dropped."""
    out = set()
    for word in normalize(text).split():
        if word in STOP_WORDS or (len(word) == 1 and not word.isdigit()):
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        out.add(word)
    return frozenset(out)


def containment(question: frozenset[str], text: frozenset[str]) -> float:
    """Share of ``question``'s words that occur in ``text`` (1.0 for an empty question: nothing to miss)."""
    return len(question & text) / len(question) if question else 1.0


def _dct_matrix(n: int = 32):
    import numpy as np

    k, i = np.arange(n)[:, None], np.arange(n)[None, :]
    return np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.where(k == 0, np.sqrt(1 / n), np.sqrt(2 / n))


_DCT = None


def phash(item) -> int:
    """63-bit perceptual hash of an image (a path, bytes, or a PIL image): the 8x8 lowest frequencies of the 2-D
    DCT of the image in grayscale at 32x32 (the constant term left out), one bit each: above their median?"""
    global _DCT
    import numpy as np
    from PIL import Image

    img = item if isinstance(item, Image.Image) else Image.open(
        io.BytesIO(item) if isinstance(item, (bytes, bytearray)) else item)
    if getattr(img, "format", None) == "JPEG":
        img.draft("L", (128, 128))  # decode a JPEG at a reduced scale: much faster, same hash
    px = np.asarray(img.convert("L").resize((32, 32), Image.Resampling.BOX), dtype=np.float64)
    if _DCT is None:
        _DCT = _dct_matrix()
    low = (_DCT @ px @ _DCT.T)[:8, :8].ravel()[1:]
    bits = 0
    for bit in low > np.median(low):
        bits = (bits << 1) | int(bit)
    return bits


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


class ImageHasher:
    """dHash per image, cached per path (bounded); counts the images decoded."""

    def __init__(self, cache_size: int = 200_000):
        self.cache: OrderedDict[str, int] = OrderedDict()
        self.cache_size = cache_size
        self.decoded = 0

    def __call__(self, item) -> int:
        if isinstance(item, (bytes, bytearray)):
            self.decoded += 1
            return phash(item)
        key = str(item)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        value = phash(item)
        self.decoded += 1
        self.cache[key] = value
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return value
