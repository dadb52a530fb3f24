"""What a task builder returns, and helpers shared by the builders."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..camera import Camera

LETTERS = "ABCDEFGH"
OPTION_ORDERS = ("shuffle", "fixed")
MCQ_INSTRUCTION = "Answer with the option's letter from the given choices directly."


@dataclass(frozen=True)
class Opts:
    """Generation options every builder receives."""

    size: int = 56
    """Image width and height in pixels."""
    kinds: tuple[str, ...] | None = None
    """Restrict the task to these question variants (None: the task's default mix)."""
    supersample: int = 1
    """Rays per pixel along each axis (2 = 4 rays per pixel, antialiased, 3x slower)."""
    option_order: str = "shuffle"
    """MCQ options: ``shuffle`` (seeded random order) or ``fixed`` (canonical: objects left to right in
    the image, directions as left/right/forward/backward). See docs/ENGINE.md on learnability."""

    def __post_init__(self):
        if self.option_order not in OPTION_ORDERS:
            raise ValueError(f"option_order must be one of {OPTION_ORDERS}, got {self.option_order!r}")


@dataclass
class Item:
    """One generated question with exact ground truth, before it is written in any format."""

    task: str
    """Engine task name ("distance", "general_vqa", ...)."""
    kind: str
    """Question variant within the task ("closer", "metric", "count", ...)."""
    images: list[np.ndarray]
    """Rendered views (H, W, 3) uint8, in the order the question refers to them."""
    question: str
    """Question text without options (bench ``question``)."""
    answer: str
    """Ground truth as the benchmark stores it: a letter, a number, or a JSON string."""
    metricfunc: str | None = None
    """SpatialTree-Bench metric; None for general data (LLaVA only)."""
    options: list[str] = field(default_factory=list)
    """MCQ options, already lettered ("A. the red sphere")."""
    question_type: str = "mcq"
    """"mcq" or "open"."""
    hint: dict[str, Any] = field(default_factory=dict)
    """Extra inputs of the metric (bench ``hint``)."""
    reply: str | None = None
    """The assistant's reply in SFT data (default: ``answer``)."""
    think: str = ""
    """A short reasoning trace that reaches the answer from the scene."""
    video: list[np.ndarray] | None = None
    """Frames of a clip (general_vqa_video); then ``images`` is empty."""
    extra_turns: list[tuple[str, str]] = field(default_factory=list)
    """Further (question, answer) turns about the same visual input (general data)."""
    scene: dict[str, Any] = field(default_factory=dict)
    """Geometry behind the answer (cameras, objects, points), for audits and tests."""

    @property
    def sft_reply(self) -> str:
        return self.reply if self.reply is not None else self.answer


def mcq(rng: np.random.Generator, correct: str, distractors: list[str], opts: Opts | None = None,
        fixed: list[str] | None = None) -> tuple[list[str], str]:
    """Lettered options and the correct letter. ``opts.option_order == "shuffle"`` (the default): a seeded
    random order; ``"fixed"``: the task's canonical order ``fixed`` (default: alphabetical). The permutation
    is drawn in both modes, so a seed gives the same scenes whatever the order."""
    texts = [correct, *distractors]
    order = rng.permutation(len(texts))
    if opts is None or opts.option_order == "shuffle":
        texts = [texts[i] for i in order]
    else:
        texts = list(fixed) if fixed is not None else sorted(texts)
        if sorted(texts) != sorted([correct, *distractors]):
            raise ValueError(f"fixed option order {fixed} does not hold the options {[correct, *distractors]}")
    letter = LETTERS[texts.index(correct)]
    opts_out = texts
    return [f"{LETTERS[i]}. {t}" for i, t in enumerate(opts_out)], letter


def pick_kind(rng: np.random.Generator, kinds: dict[str, float], only: list[str] | None) -> str:
    """A question variant drawn with the task's default weights, or from ``only`` uniformly."""
    if only:
        unknown = [k for k in only if k not in kinds]
        if unknown:
            raise ValueError(f"unknown kind(s) {unknown}; this task has {sorted(kinds)}")
        names = list(only)
        return names[int(rng.integers(len(names)))]
    names = list(kinds)
    p = np.array([kinds[k] for k in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def deg(x: float) -> float:
    return math.degrees(x)


def rad(x: float) -> float:
    return math.radians(x)


def ground_camera(rng: np.random.Generator, size: int, *, height=(1.2, 1.8), pitch_deg=(-20.0, -8.0),
                  vfov=60.0, yaw_deg=(0.0, 0.0)) -> Camera:
    """A level, slightly downward-looking camera at the origin, facing +y."""
    return Camera(position=(0.0, 0.0, float(rng.uniform(*height))), yaw=rad(rng.uniform(*yaw_deg)),
                  pitch=rad(rng.uniform(*pitch_deg)), roll=0.0, vfov=vfov, width=size, height=size)


class Retry(Exception):
    """Raised by a builder when a random draw is unusable; the builder is called again."""


def attempt(build, rng: np.random.Generator, tries: int = 200):
    """Call ``build(rng)`` until it does not raise :class:`Retry` (deterministic for the rng)."""
    last: Retry | None = None
    for _ in range(tries):
        try:
            return build(rng)
        except Retry as e:
            last = e
    raise RuntimeError(f"no usable scene after {tries} draws (last reason: {last})")
