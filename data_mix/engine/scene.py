"""Scene description: coloured boxes, spheres and upright cylinders on an infinite ground plane."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# Object colours (names are what questions say). Marker colours are kept out of this palette.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 225),
    "yellow": (235, 205, 35),
    "purple": (145, 60, 190),
    "orange": (245, 130, 25),
}
COLORS = tuple(PALETTE)
SHAPES = ("box", "sphere", "cylinder")


@dataclass(frozen=True)
class Obj:
    """One object. ``size`` is its extent along its own x, y and z axes (metres); ``yaw`` turns
    a box about the vertical. A sphere has equal extents; a cylinder stands upright."""

    shape: str
    color: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    yaw: float = 0.0

    @property
    def name(self) -> str:
        """How questions refer to it: "red sphere"."""
        return f"{self.color} {self.shape}"

    @property
    def rgb(self) -> tuple[int, int, int]:
        return PALETTE[self.color]

    @property
    def longest(self) -> float:
        """Longest dimension (length, width or height) in metres."""
        return float(max(self.size))

    @property
    def footprint(self) -> float:
        """Radius of the circle covering the object on the ground."""
        return 0.5 * math.hypot(self.size[0], self.size[1])

    @property
    def bound_radius(self) -> float:
        """Radius of the sphere around ``center`` that contains the object."""
        return 0.5 * float(np.linalg.norm(self.size))

    def to_dict(self) -> dict:
        return {"shape": self.shape, "color": self.color, "center": [float(c) for c in self.center],
                "size": [float(s) for s in self.size], "yaw": float(self.yaw)}


@dataclass
class Scene:
    objects: list[Obj] = field(default_factory=list)
    checker: bool = True
    """Draw 1 m ground tiles (perspective cues for gravity, motion and navigation)."""

    def without(self, index: int) -> Scene:
        return Scene([o for i, o in enumerate(self.objects) if i != index], self.checker)

    def to_dict(self) -> dict:
        return {"objects": [o.to_dict() for o in self.objects], "checker": self.checker}


def make_object(rng: np.random.Generator, shape: str, color: str, xy: tuple[float, float],
                scale: float, lift: float = 0.0) -> Obj:
    """An object of roughly ``scale`` metres standing on the ground at ``xy`` (raised by ``lift``)."""
    if shape == "sphere":
        size = (scale, scale, scale)
    elif shape == "cylinder":
        d = scale * rng.uniform(0.6, 0.9)
        size = (d, d, scale * rng.uniform(0.9, 1.4))
    else:
        size = (scale * rng.uniform(0.7, 1.0), scale * rng.uniform(0.7, 1.0), scale * rng.uniform(0.6, 1.0))
    yaw = float(rng.uniform(0, math.pi / 2)) if shape == "box" else 0.0
    return Obj(shape, color, (float(xy[0]), float(xy[1]), lift + size[2] / 2.0), tuple(float(s) for s in size), yaw)


def scatter(rng: np.random.Generator, n: int, *, colors: list[str] | None = None, shapes: list[str] | None = None,
            x_range=(-3.0, 3.0), y_range=(2.5, 8.0), scale_range=(0.45, 0.8), gap: float = 0.3,
            max_tries: int = 200) -> list[Obj]:
    """``n`` non-overlapping objects on the ground with distinct colours (unless ``colors`` is given)."""
    if colors is None:  # distinct colours while the palette lasts
        colors = list(rng.choice(COLORS, size=n, replace=n > len(COLORS)))
    shapes = list(shapes) if shapes is not None else [str(rng.choice(SHAPES)) for _ in range(n)]
    placed: list[Obj] = []
    for i in range(n):
        for _ in range(max_tries):
            xy = (rng.uniform(*x_range), rng.uniform(*y_range))
            obj = make_object(rng, shapes[i], str(colors[i]), xy, rng.uniform(*scale_range))
            if all(math.dist(xy, o.center[:2]) > obj.footprint + o.footprint + gap for o in placed):
                placed.append(obj)
                break
        else:
            raise RuntimeError(f"could not place {n} objects without overlap")
    return placed
