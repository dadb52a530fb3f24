"""The paper's navigation action space (Table A / Fig. E) and how the engine applies it to a camera.

Symbols and step sizes are the ones the prompt gives the model and that SpatialTree-Bench's
``agenticnaveval`` reads back: translations move along the camera's own axes (x right, y down,
z forward), pans turn about the vertical. Relative poses are stored as ``[x, y, z, qx, qy, qz, qw]``
in the starting camera's frame, with the pan written as a rotation of ``+angle`` about the pose's z
axis: that is how the reference scorer composes a pan (``from_euler("zyx", [yaw, pitch, roll])``),
so a ground-truth answer replayed by the reference lands exactly on the stored goal pose.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from .camera import Camera

TRANSLATION_STEP = 0.0626
"""Metres per step (the paper's prompt)."""
ROTATION_STEP = 0.0725
"""Radians per step (the paper's prompt)."""
MAX_STEPS = 10
"""Step counts are capped at 10 (the paper)."""

ACTIONS = {
    "W": "Dolly In", "S": "Dolly Out", "A": "Truck Left", "D": "Truck Right",
    "space": "Pedestal Up", "shift": "Pedestal Down",
    "←": "Pan Left", "→": "Pan Right", "↑": "Tilt Up", "↓": "Tilt Down",
    "↻": "Roll CW", "↺": "Roll CCW", "STOP": "Stay",
}
# symbol -> (right, down, forward) translation per step, in steps
_MOVE = {"W": (0, 0, 1), "S": (0, 0, -1), "A": (-1, 0, 0), "D": (1, 0, 0), "space": (0, -1, 0), "shift": (0, 1, 0)}
_PAN = {"→": 1, "←": -1}
_TILT = {"↑": 1, "↓": -1}
_ROLL = {"↺": 1, "↻": -1}


def displacement(actions: list[str], steps: list[int], t_step: float = TRANSLATION_STEP,
                 r_step: float = ROTATION_STEP) -> tuple[np.ndarray, float, float, float]:
    """Total (right, down, forward) translation in metres and pan, tilt, roll in radians."""
    if len(actions) != len(steps):
        raise ValueError(f"actions and step_nums differ in length: {len(actions)} vs {len(steps)}")
    move = np.zeros(3)
    pan = tilt = roll = 0.0
    for a, n in zip(actions, steps):
        if a not in ACTIONS:
            raise ValueError(f"unknown action symbol {a!r}; expected one of {list(ACTIONS)}")
        if a in _MOVE:
            move += np.asarray(_MOVE[a], dtype=np.float64) * n * t_step
        pan += _PAN.get(a, 0) * n * r_step
        tilt += _TILT.get(a, 0) * n * r_step
        roll += _ROLL.get(a, 0) * n * r_step
    return move, pan, tilt, roll


def apply(cam: Camera, actions: list[str], steps: list[int], t_step: float = TRANSLATION_STEP,
          r_step: float = ROTATION_STEP) -> Camera:
    """The camera after the actions: all translations (in the starting camera's frame), then the
    rotations. This is the order in which the reference scorer composes one segment."""
    move, pan, tilt, roll = displacement(actions, steps, t_step, r_step)
    moved = cam.moved(right=move[0], down=move[1], forward=move[2])
    return replace(moved, yaw=moved.yaw + pan, pitch=moved.pitch + tilt, roll=moved.roll + roll)


def relative_pose(ref: Camera, cam: Camera) -> list[float]:
    """``cam``'s pose in ``ref``'s camera frame as [x, y, z, qx, qy, qz, qw] (see module docstring).
    Only level cameras (no pitch or roll) are supported, which is what the navigation task renders."""
    for c in (ref, cam):
        if abs(c.pitch) > 1e-9 or abs(c.roll) > 1e-9:
            raise ValueError("relative_pose supports level cameras only (pitch = roll = 0)")
    pos = ref.rotation.T @ (cam.center - ref.center)
    half = (cam.yaw - ref.yaw) / 2.0
    return [round(float(x), 6) for x in (*pos, 0.0, 0.0, math.sin(half), math.cos(half))]


def sample_actions(rng: np.random.Generator, pan_prob: float = 0.6) -> tuple[list[str], list[int]]:
    """A ground-truth segment: one or two translation axes, then possibly a pan; 2-10 steps each."""
    axes = [("W", "S"), ("A", "D"), ("space", "shift")]
    chosen = sorted(rng.choice(3, size=int(rng.integers(1, 3)), replace=False))
    actions, steps = [], []
    for i in chosen:
        actions.append(axes[i][int(rng.integers(2))])
        steps.append(int(rng.integers(2, MAX_STEPS + 1)))
    if rng.random() < pan_prob:
        actions.append("←" if rng.random() < 0.5 else "→")
        steps.append(int(rng.integers(2, MAX_STEPS + 1)))
    return actions, steps
