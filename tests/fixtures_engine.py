"""Shared by the engine tests (and usable by anyone who needs real stand-in data):

    from fixtures_engine import standin_small

    @pytest.fixture(scope="session")
    def standin(tmp_path_factory):
        return standin_small(tmp_path_factory)

``standin_small`` builds the shipped registry's ``--scale small`` stand-in once per test process
(later calls return the same one) as a :class:`Standin`: root directory, manifest, CPU seconds
(this process and its workers) and wall seconds it took.

``Cam`` is an independent pinhole camera for checking the engine's answers: its rotation is built
with scipy from the documented angle conventions, not with the engine's code.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class Standin:
    root: Path
    manifest: dict
    cpu_seconds: float
    wall_seconds: float


_BUILT: list[Standin] = []


def _cpu() -> float:
    """CPU seconds of this process and of its finished children (the engine's worker processes)."""
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + kids.ru_utime + kids.ru_stime


def standin_small(tmp_path_factory) -> Standin:
    """The shipped registry's small stand-in (seed 0, 56 px, default worker processes)."""
    from data_mix.engine import make_standin

    if not _BUILT:
        root = tmp_path_factory.mktemp("engine_standin_small")
        cpu, wall = _cpu(), time.perf_counter()
        manifest = make_standin(root, scale="small", seed=0, progress=False)
        _BUILT.append(Standin(root, manifest, _cpu() - cpu, time.perf_counter() - wall))
    return _BUILT[0]


class Cam:
    """World: x right, y forward, z up. Yaw turns right, pitch looks up, roll turns the camera
    counter-clockwise seen from behind (docs/ENGINE.md)."""

    def __init__(self, d: dict):
        from scipy.spatial.transform import Rotation

        self.c = np.asarray(d["position"], dtype=float)
        rot = Rotation.from_euler("ZXY", [-d["yaw"], d["pitch"], -d["roll"]]).as_matrix()
        self.right, self.forward, self.up = rot[:, 0], rot[:, 1], rot[:, 2]
        self.w, self.h = d["width"], d["height"]
        self.f = (self.h / 2) / math.tan(math.radians(d["vfov"]) / 2)
        self.yaw = d["yaw"]

    def cam(self, x) -> np.ndarray:
        """(right, down, depth) of a world point."""
        v = np.asarray(x, dtype=float) - self.c
        return np.array([v @ self.right, -(v @ self.up), v @ self.forward])

    def project(self, x) -> tuple[float, float, float]:
        x_, y_, z_ = self.cam(x)
        return self.f * x_ / z_ + self.w / 2, self.f * y_ / z_ + self.h / 2, z_

    def horizon_v(self, u: float) -> float | None:
        """Image row of the horizon at column u (where the pixel ray is horizontal)."""
        down = -self.up
        a = (u - self.w / 2) / self.f
        # ray = a*right + b*down + forward, z component = 0
        if abs(down[2]) < 1e-9:
            return None
        b = -(a * self.right[2] + self.forward[2]) / down[2]
        return self.h / 2 + self.f * b
