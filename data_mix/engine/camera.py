"""A pinhole camera in a z-up world.

World frame: x to the right, y forward (into the scene), z up; the ground is the plane z = 0.
Camera frame (OpenCV): x right, y down, z forward; the depth of a point is its camera z.

Angles: ``yaw`` turns the camera to the right (pan right) about the world vertical, ``pitch``
raises the optical axis above the horizon (tilt up), ``roll`` rotates the camera about its optical
axis counter-clockwise as seen from behind (the image content then turns clockwise). All three are
in radians here; the tasks report degrees where a question asks for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import cached_property, lru_cache

import numpy as np


@lru_cache(maxsize=16)
def _camera_grid(w: int, h: int, f: float) -> np.ndarray:
    """Camera-frame directions (h, w, 3) through pixel centres at unit depth (read-only, cached)."""
    grid = np.empty((h, w, 3))
    grid[..., 0] = ((np.arange(w) + 0.5 - w / 2.0) / f)[None, :]
    grid[..., 1] = ((np.arange(h) + 0.5 - h / 2.0) / f)[:, None]
    grid[..., 2] = 1.0
    grid.flags.writeable = False
    return grid


@dataclass(frozen=True)
class Camera:
    position: tuple[float, float, float]
    """Camera centre in world coordinates (metres)."""
    yaw: float = 0.0
    """Pan angle in radians; 0 looks along +y, positive looks towards +x."""
    pitch: float = 0.0
    """Tilt angle in radians; positive looks up."""
    roll: float = 0.0
    """Roll about the optical axis in radians; positive = counter-clockwise seen from behind."""
    vfov: float = 60.0
    """Vertical field of view in degrees."""
    width: int = 56
    height: int = 56

    @cached_property
    def focal(self) -> float:
        """Focal length in pixels (square pixels)."""
        return (self.height / 2.0) / math.tan(math.radians(self.vfov) / 2.0)

    @property
    def center(self) -> np.ndarray:
        return np.asarray(self.position, dtype=np.float64)

    @cached_property
    def rotation(self) -> np.ndarray:
        """3x3 matrix whose columns are the camera's right, down and forward axes in world coordinates."""
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        f0 = np.array([sy, cy, 0.0])
        r0 = np.array([cy, -sy, 0.0])
        u0 = np.array([0.0, 0.0, 1.0])
        f1 = cp * f0 + sp * u0
        u1 = cp * u0 - sp * f0
        r2 = cr * r0 + sr * u1
        u2 = cr * u1 - sr * r0
        return np.stack([r2, -u2, f1], axis=1)

    def to_camera(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> camera coordinates (N, 3): x right, y down, z = depth."""
        pts = np.atleast_2d(np.asarray(points, dtype=np.float64))
        return (pts - self.center) @ self.rotation

    def project(self, points: np.ndarray) -> np.ndarray:
        """World points (N, 3) -> (N, 3) array of pixel u, pixel v (continuous, origin at the
        top-left image corner) and depth. Points behind the camera get depth <= 0."""
        cam = self.to_camera(points)
        z = cam[:, 2]
        safe = np.where(np.abs(z) < 1e-9, 1e-9, z)
        u = self.focal * cam[:, 0] / safe + self.width / 2.0
        v = self.focal * cam[:, 1] / safe + self.height / 2.0
        return np.stack([u, v, z], axis=1)

    def pixel_rays(self, scale: int = 1) -> np.ndarray:
        """World directions (H*scale, W*scale, 3) through pixel (sub-)centres, scaled so that the
        ray parameter t equals the camera depth of the point C + t * d."""
        return _camera_grid(self.width * scale, self.height * scale, self.focal * scale) @ self.rotation.T

    def moved(self, right: float = 0.0, down: float = 0.0, forward: float = 0.0) -> Camera:
        """The camera translated along its own axes (metres)."""
        delta = self.rotation @ np.array([right, down, forward], dtype=np.float64)
        return replace(self, position=tuple(float(x) for x in self.center + delta))

    def walked(self, right: float = 0.0, forward: float = 0.0, up: float = 0.0) -> Camera:
        """The camera translated horizontally along its heading (ignoring pitch and roll) and vertically."""
        cy, sy = math.cos(self.yaw), math.sin(self.yaw)
        delta = right * np.array([cy, -sy, 0.0]) + forward * np.array([sy, cy, 0.0]) + np.array([0.0, 0.0, up])
        return replace(self, position=tuple(float(x) for x in self.center + delta))

    def ray(self, u: float, v: float) -> np.ndarray:
        """World direction through the continuous pixel position (u, v), scaled to unit depth."""
        cam = np.array([(u - self.width / 2.0) / self.focal, (v - self.height / 2.0) / self.focal, 1.0])
        return self.rotation @ cam

    def panned(self, angle: float) -> Camera:
        """The camera turned right by ``angle`` radians about the world vertical (pan)."""
        return replace(self, yaw=self.yaw + angle)

    def to_dict(self) -> dict:
        return {"position": [float(x) for x in self.position], "yaw": self.yaw, "pitch": self.pitch,
                "roll": self.roll, "vfov": self.vfov, "width": self.width, "height": self.height}

    @classmethod
    def from_dict(cls, d: dict) -> Camera:
        return cls(position=tuple(d["position"]), yaw=d["yaw"], pitch=d["pitch"], roll=d["roll"],
                   vfov=d["vfov"], width=d["width"], height=d["height"])
