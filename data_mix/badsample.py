"""Bad input handling: the :class:`BadSample` error and the ``data.on_bad_sample`` policy.

Every reader and check raises :class:`BadSample` (file, row, reason). The policy object decides:
``error`` re-raises it (the run stops naming file, row and reason); ``skip`` counts it per reason,
logs the first few, and stops with :class:`TooManyBadSamples` once the skipped fraction passes
``data.max_skip_fraction`` (checked after ``data.skip_check_after`` samples, so that one bad row
among the first ten does not stop a run).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field

log = logging.getLogger("data_mix")

# Reason codes (counted per reason under the skip policy).
REASONS = (
    "malformed_json",        # a line / element that is not valid JSON, or not an object
    "bad_record",            # a row that does not follow its format's schema
    "missing_media",         # an image, frame folder or video file that does not exist
    "empty_media_file",      # a zero-byte media file
    "unreadable_image",      # not an image PIL can identify
    "truncated_image",       # header fine, pixel data cut short
    "image_too_large",       # beyond PIL's decompression-bomb limit
    "video_decode",          # a video file that cannot be decoded
    "placeholder_mismatch",  # <image>/<video> tags do not match the media given
    "empty_assistant_turn",  # an assistant turn with no text
    "too_long",              # more tokens than data.max_length
)


class BadSample(Exception):
    """One bad row: ``file`` and 0-based ``row`` where it is, ``reason`` (one of REASONS), ``detail``."""

    def __init__(self, file: str, row: int, reason: str, detail: str = ""):
        self.file, self.row, self.reason, self.detail = str(file), int(row), reason, detail
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}, row {self.row + 1}" if self.row >= 0 else self.file
        return f"{where}: {self.reason}" + (f": {self.detail}" if self.detail else "")

    def __reduce__(self):  # picklable across DataLoader workers
        return (BadSample, (self.file, self.row, self.reason, self.detail))


class TooManyBadSamples(RuntimeError):
    """The skipped fraction passed ``data.max_skip_fraction``."""


@dataclass
class BadSampleTracker:
    """Applies ``data.on_bad_sample``; counts seen and skipped samples."""

    policy: str = "error"
    max_skip_fraction: float = 0.01
    check_after: int = 100
    log_first: int = 5
    seen: int = 0
    counts: Counter = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @classmethod
    def from_config(cls, data) -> BadSampleTracker:
        return cls(policy=data.on_bad_sample, max_skip_fraction=data.max_skip_fraction,
                   check_after=data.skip_check_after)

    @property
    def skipped(self) -> int:
        return sum(self.counts.values())

    def ok(self) -> None:
        """Count one good sample."""
        self.seen += 1

    def bad(self, exc: BadSample) -> None:
        """Handle one bad sample: raise under ``error``, count (and maybe stop) under ``skip``."""
        self.seen += 1
        if self.policy != "skip":
            raise exc
        self.counts[exc.reason] += 1
        if len(self.examples) < self.log_first:
            self.examples.append(str(exc))
            log.warning("skipping bad sample: %s", exc)
        self.check()

    def check(self) -> None:
        """Raise TooManyBadSamples when the skipped fraction passes the limit."""
        if self.seen >= self.check_after and self.skipped > self.max_skip_fraction * self.seen:
            raise TooManyBadSamples(
                f"{self.skipped} of {self.seen} samples were bad ({self.skipped / self.seen:.1%} > "
                f"data.max_skip_fraction={self.max_skip_fraction}): {self.summary()}")

    def summary(self) -> str:
        """One line: totals per reason and the first examples."""
        if not self.counts:
            return f"0 skipped of {self.seen}"
        per = ", ".join(f"{r}: {n}" for r, n in sorted(self.counts.items()))
        first = "; ".join(self.examples[:3])
        return f"{self.skipped} skipped of {self.seen} ({per}); first: {first}"

    def state_dict(self) -> dict:
        return {"seen": self.seen, "counts": dict(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        self.seen = int(state.get("seen", 0))
        self.counts = Counter(state.get("counts", {}))
