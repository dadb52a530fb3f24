"""L3 route planning and L4 goal-image navigation."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np

from .. import actions as nav
from ..camera import Camera
from ..render import render
from ..scene import Scene, scatter
from .base import Item, Opts, Retry, attempt, mcq, rad

TURNS = ("go straight", "turn left", "turn right", "turn around")


def turn_between(heading: np.ndarray, leg: np.ndarray) -> str | None:
    """The turn from walking direction ``heading`` to ``leg`` (2-D, x right / y forward), or None when
    the angle is too close to a boundary between two turns to be a fair question."""
    ang = math.degrees(math.atan2(heading[0] * leg[1] - heading[1] * leg[0], heading @ leg))  # + = left
    a = abs(ang)
    if a <= 30:
        return "go straight"
    if 50 <= a <= 130:
        return "turn left" if ang > 0 else "turn right"
    if a >= 150:
        return "turn around"
    return None


def _min_area(size: int) -> float:
    return 4.0 * (size / 56.0) ** 2


def route(rng: np.random.Generator, opts: Opts) -> Item:
    def build(rng):
        cam = Camera(position=(0.0, 0.0, float(rng.uniform(4.5, 6.0))), yaw=rad(rng.uniform(-15, 15)),
                     pitch=rad(rng.uniform(-65, -50)), vfov=60.0, width=opts.size, height=opts.size)
        # objects around the ground point the camera looks at
        f = cam.rotation[:, 2]
        t = -cam.center[2] / f[2]
        cx, cy = (cam.center + t * f)[:2]
        n = int(rng.integers(3, 5))
        scene = Scene(scatter(rng, n, x_range=(cx - 2.2, cx + 2.2), y_range=(cy - 1.6, cy + 1.6), gap=0.6,
                              scale_range=(0.4, 0.6)))
        r = render(scene, cam, opts.supersample)
        if (r.pixel_counts(n) < _min_area(opts.size)).any():
            raise Retry("an object is not clearly visible")
        legs = n - 1 if n == 3 else int(rng.integers(2, 4))
        stops = [int(i) for i in rng.permutation(n)[: legs + 1]]
        heading = np.array([math.sin(cam.yaw), math.cos(cam.yaw)])
        turns = []
        for a, b in zip(stops, stops[1:]):
            leg = np.asarray(scene.objects[b].center[:2]) - np.asarray(scene.objects[a].center[:2])
            leg = leg / np.linalg.norm(leg)
            turn = turn_between(heading, leg)
            if turn is None:
                raise Retry("ambiguous turn")
            turns.append(turn)
            heading = leg
        return cam, scene, r, stops, turns

    cam, scene, r, stops, turns = attempt(build, rng)
    names = [scene.objects[i].name for i in stops]
    correct = ", then ".join(turns)
    # distractors: sequences differing in one turn first, then any other sequence
    near = [seq for seq in itertools.product(TURNS, repeat=len(turns))
            if sum(a != b for a, b in zip(seq, turns)) == 1]
    far = [seq for seq in itertools.product(TURNS, repeat=len(turns))
           if sum(a != b for a, b in zip(seq, turns)) > 1]
    pool = [", then ".join(near[i]) for i in rng.permutation(len(near))][:2]
    pool += [", then ".join(far[i]) for i in rng.permutation(len(far))][: 3 - len(pool)]
    options, letter = mcq(rng, correct, pool, opts)
    walk = ", then to the ".join(names[1:])
    q = (f"Seen from above: you stand at the {names[0]}, facing the direction the camera looks (along the ground). "
         f"You walk in straight lines to the {walk}. Which turn do you make before each walk?")
    think = " ".join(f"From the {names[i]}, the {names[i + 1]} requires: {t}." for i, t in enumerate(turns))
    think += f" The answer is {letter}."
    meta = {"cameras": [cam.to_dict()], **scene.to_dict(), "stops": stops, "turns": turns}
    return Item("route", "route", [r.rgb], q, letter, "multichoiceeval", options=options, think=think, scene=meta)


def _nav_json(actions: list[str], steps: list[int]) -> str:
    return json.dumps({"actions": actions, "step_nums": steps}, ensure_ascii=False)


def navigation(rng: np.random.Generator, opts: Opts) -> Item:
    def build(rng):
        cam1 = Camera(position=(0.0, 0.0, float(rng.uniform(1.2, 1.6))), yaw=rad(rng.uniform(-10, 10)), pitch=0.0,
                      roll=0.0, vfov=60.0, width=opts.size, height=opts.size)
        scene = Scene(scatter(rng, int(rng.integers(6, 9)), x_range=(-4.0, 4.0), y_range=(2.5, 9.0)))
        ex_a, ex_s = nav.sample_actions(rng)
        gt_a, gt_s = nav.sample_actions(rng)
        cam2 = nav.apply(cam1, ex_a, ex_s)
        cam3 = nav.apply(cam2, gt_a, gt_s)
        if min(c.position[2] for c in (cam2, cam3)) < 0.4:
            raise Retry("camera below the floor")
        renders = [render(scene, c, opts.supersample) for c in (cam1, cam2, cam3)]
        for rr in renders:
            if (rr.pixel_counts(len(scene.objects)) >= _min_area(opts.size)).sum() < 2:
                raise Retry("a view shows fewer than two objects")
        return (cam1, cam2, cam3), scene, renders, (ex_a, ex_s), (gt_a, gt_s)

    cams, scene, renders, (ex_a, ex_s), (gt_a, gt_s) = attempt(build, rng)
    answer = _nav_json(gt_a, gt_s)
    seg = {"translation_step_size": nav.TRANSLATION_STEP, "rotation_step_size": nav.ROTATION_STEP}
    hint = {"optimal_rel_pose": [nav.relative_pose(cams[1], c) for c in cams], "0->1": dict(seg), "1->2": dict(seg)}
    q = ("Image 1, Image 2 and Image 3 come from one camera moving through a scene. From Image 1 to Image 2 the "
         f"camera did: {_nav_json(ex_a, ex_s)}. Give the actions that move the camera from Image 2 (start) to "
         "Image 3 (goal). Actions: W forward, S backward, A left, D right, space up, shift down "
         f"({nav.TRANSLATION_STEP} m per step); ← pan left, → pan right, ↑ tilt up, ↓ tilt down, ↻ roll CW, "
         f"↺ roll CCW ({nav.ROTATION_STEP} rad per step); STOP stay. "
         'Answer with a JSON object {"actions": [...], "step_nums": [...]} of equal lengths; each step_num is '
         "from 0 to 10.")
    move, pan, _, _ = nav.displacement(gt_a, gt_s)
    parts = [f"{abs(v):.2f} m {pos if v > 0 else neg}"
             for v, pos, neg in ((move[0], "right", "left"), (move[1], "down", "up"), (move[2], "forward", "back"))
             if abs(v) > 1e-9]
    if abs(pan) > 1e-9:
        parts.append(f"a pan of {math.degrees(abs(pan)):.0f} degrees to the {'right' if pan > 0 else 'left'}")
    think = ("Comparing Image 2 with Image 3, the goal view is reached by moving " + " and ".join(parts)
             + f"; in steps of {nav.TRANSLATION_STEP} m and {nav.ROTATION_STEP} rad that is {answer}.")
    meta = {"cameras": [c.to_dict() for c in cams], **scene.to_dict(),
            "example": {"actions": ex_a, "step_nums": ex_s}}
    return Item("navigation", "navigation", [rr.rgb for rr in renders], q, answer, "agenticnaveval",
                question_type="open", hint=hint, think=think, scene=meta)
