"""L1 single-view tasks: distance, size, relative direction, gravity."""

from __future__ import annotations

import json
import math

import numpy as np

from ..camera import Camera
from ..render import render, screen_boxes
from ..scene import COLORS, SHAPES, Obj, Scene, make_object, scatter
from .base import Item, Opts, Retry, attempt, deg, ground_camera, mcq, pick_kind, rad

DISTANCE_KINDS = {"closer": 0.4, "farther": 0.3, "metric": 0.3}
SIZE_KINDS = {"larger": 0.6, "metric": 0.4}
DIRECTION_KINDS = {"lr": 0.5, "ab": 0.5}
# Tolerances (standard deviations, degrees) that gravityeval scores with. The engine's ground
# truth is exact; these play the role of GeoCalib's annotation uncertainty in the real benchmark.
GRAVITY_UNC = {"roll_unc": 2.0, "pitch_unc": 2.0, "vfov_unc": 5.0}


def _min_area(size: int) -> float:
    """Fewest visible pixels for an object to count as clearly visible at this image size."""
    return 4.0 * (size / 56.0) ** 2


def _apart(cam: Camera, a: Obj, b: Obj, scale: int = 1) -> bool:
    """Whether the two objects' screen rectangles do not overlap (neither hides the other)."""
    ba, bb = screen_boxes([a, b], cam, scale)
    if ba is None or bb is None:
        return False
    return ba[2] <= bb[0] or bb[2] <= ba[0] or ba[3] <= bb[1] or bb[3] <= ba[1]


def _depth(cam: Camera, o: Obj) -> float:
    return float(cam.to_camera(np.asarray(o.center)[None])[0, 2])


def _left_to_right(cam: Camera, scene: Scene) -> list[str]:
    """"the <name>" of the scene's objects in the order they appear from left to right."""
    u = cam.project(np.array([o.center for o in scene.objects]))[:, 0]
    return [f"the {scene.objects[i].name}" for i in np.argsort(u, kind="stable")]


def _check_visible(r, scene: Scene, size: int) -> None:
    area = r.pixel_counts(len(scene.objects))
    if (area < _min_area(size)).any():
        raise Retry("an object is not clearly visible")


def _lateral(rng, y: float, cam: Camera, frac: float = 0.6) -> float:
    """An x position at depth ~y that stays inside the horizontal field of view."""
    half = y * math.tan(math.radians(cam.vfov) / 2) * frac
    return float(rng.uniform(-half, half))


def _two_colors(rng) -> list[str]:
    return [str(c) for c in rng.choice(COLORS, size=2, replace=False)]


def _require_apart(cam: Camera, objs: list[Obj]) -> None:
    if not _apart(cam, objs[0], objs[1]):
        raise Retry("objects overlap on screen")


def _render_pair(rng, cam: Camera, objs: list[Obj], opts: Opts):
    """(cam, scene, render) of the two objects in random order (the first object is not always the near,
    large or lower one); Retry unless both are clearly visible."""
    if rng.random() < 0.5:
        objs.reverse()
    scene = Scene(objs)
    r = render(scene, cam, opts.supersample)
    _check_visible(r, scene, opts.size)
    return cam, scene, r


def _scene_meta(cam: Camera, scene: Scene, **extra) -> dict:
    return {"cameras": [cam.to_dict()], **scene.to_dict(), **extra}


def _metric_item(task: str, kind: str, r, scene: Scene, meta: dict, target: Obj, q: str, answer: str,
                 think: str) -> Item:
    """An open question about one object (``meta["target"]`` names it), scored by mean relative accuracy."""
    meta["target"] = scene.objects.index(target)
    return Item(task, kind, [r.rgb], q, answer, "meanrelativeacc", question_type="open", think=think, scene=meta)


def _which_object(rng, want: Obj, other: Obj, opts: Opts, cam: Camera, scene: Scene) -> tuple[list[str], str]:
    """(options, letter) of an MCQ whose answer is ``want``; ``fixed`` order lists objects left to right."""
    return mcq(rng, f"the {want.name}", [f"the {other.name}"], opts, _left_to_right(cam, scene))


def distance(rng: np.random.Generator, opts: Opts) -> Item:
    kind = pick_kind(rng, DISTANCE_KINDS, opts.kinds)

    def build(rng):
        cam = ground_camera(rng, opts.size)
        colors = _two_colors(rng)
        near_y = rng.uniform(2.2, 4.0)
        far_y = near_y * rng.uniform(1.6, 2.3)
        scale = rng.uniform(0.5, 0.8)
        objs = []
        for c, y in zip(colors, (near_y, far_y)):
            shape = str(rng.choice(SHAPES))
            objs.append(make_object(rng, shape, c, (_lateral(rng, y, cam), y), scale * rng.uniform(0.9, 1.1)))
        _require_apart(cam, objs)
        return _render_pair(rng, cam, objs, opts)

    cam, scene, r = attempt(build, rng)
    a, b = scene.objects
    da, db = _depth(cam, a), _depth(cam, b)
    near, far = (a, b) if da < db else (b, a)
    dn, df = min(da, db), max(da, db)
    facts = f"The {near.name} is about {dn:.1f} m from the camera and the {far.name} about {df:.1f} m"
    meta = _scene_meta(cam, scene, depths=[round(da, 4), round(db, 4)])
    if kind == "metric":
        target = a if rng.random() < 0.5 else b
        d = _depth(cam, target)
        q = (f"How far is the {target.name} from the camera, measured along the viewing direction "
             "(the depth of its centre), in meters? Answer with a single number.")
        think = (f"The {target.name} stands on the ground; from its image position and size its centre is "
                 f"about {d:.2f} m in front of the camera.")
        return _metric_item("distance", kind, r, scene, meta, target, q, f"{d:.2f}", think)
    want = near if kind == "closer" else far
    other = far if kind == "closer" else near
    options, letter = _which_object(rng, want, other, opts, cam, scene)
    q = f"Which object is {kind} to the camera?" if kind == "closer" else "Which object is farther from the camera?"
    think = f"{facts}, so the {want.name} is {kind}. The answer is {letter}."
    return Item("distance", kind, [r.rgb], q, letter, "multichoiceeval", options=options, think=think, scene=meta)


def size(rng: np.random.Generator, opts: Opts) -> Item:
    kind = pick_kind(rng, SIZE_KINDS, opts.kinds)

    def build(rng):
        cam = ground_camera(rng, opts.size)
        colors = _two_colors(rng)
        small = rng.uniform(0.3, 0.55)
        scales = [small, small * rng.uniform(1.5, 2.2)]
        ys = sorted([rng.uniform(2.5, 4.0), rng.uniform(4.5, 7.5)])
        if rng.random() < 0.5:  # the larger object is often the farther one: image size misleads
            ys.reverse()
        objs = [make_object(rng, str(rng.choice(SHAPES)), c, (_lateral(rng, y, cam), y), s)
                for c, y, s in zip(colors, ys, scales)]
        lo, hi = sorted(o.longest for o in objs)
        if hi / lo < 1.35:
            raise Retry("sizes too similar")
        _require_apart(cam, objs)
        return _render_pair(rng, cam, objs, opts)

    cam, scene, r = attempt(build, rng)
    a, b = scene.objects
    big, small_o = (a, b) if a.longest > b.longest else (b, a)
    meta = _scene_meta(cam, scene)
    if kind == "metric":
        target = a if rng.random() < 0.5 else b
        cm = round(target.longest * 100)
        q = (f"What is the length of the longest dimension (length, width, or height) of the {target.name}, "
             "in centimeters? Answer with a single number.")
        think = (f"The {target.name} is about {_depth(cam, target):.1f} m away; at that distance its image extent "
                 f"means its longest side is about {cm} cm.")
        return _metric_item("size", kind, r, scene, meta, target, q, str(cm), think)
    options, letter = _which_object(rng, big, small_o, opts, cam, scene)
    q = "Which object is larger in the real world (by its longest dimension)?"
    think = (f"The {big.name} is about {big.longest * 100:.0f} cm at {_depth(cam, big):.1f} m and the "
             f"{small_o.name} about {small_o.longest * 100:.0f} cm at {_depth(cam, small_o):.1f} m, "
             f"so the {big.name} is larger. The answer is {letter}.")
    return Item("size", kind, [r.rgb], q, letter, "multichoiceeval", options=options, think=think, scene=meta)


def relative_direction(rng: np.random.Generator, opts: Opts) -> Item:
    kind = pick_kind(rng, DIRECTION_KINDS, opts.kinds)

    def build(rng):
        cam = ground_camera(rng, opts.size)
        colors = _two_colors(rng)
        y = rng.uniform(3.0, 5.5)
        scale = rng.uniform(0.5, 0.8)
        if kind == "lr":
            half = y * math.tan(math.radians(cam.vfov) / 2) * 0.7
            gap = rng.uniform(0.45, 0.9) * half
            x0 = rng.uniform(-half + gap, half - gap) if half > gap else 0.0
            xs = [x0 - gap, x0 + gap]
            objs = [make_object(rng, str(rng.choice(SHAPES)), c, (x, y + rng.uniform(-0.4, 0.4)), scale)
                    for c, x in zip(colors, xs)]
            _require_apart(cam, objs)
        else:
            x = _lateral(rng, y, cam, 0.4)
            base = make_object(rng, "box", colors[0], (x, y), scale * 1.1)
            top_shape = str(rng.choice(SHAPES))
            top = make_object(rng, top_shape, colors[1], (x, y), scale * 0.8, lift=base.size[2])
            objs = [base, top]
        return _render_pair(rng, cam, objs, opts)

    cam, scene, r = attempt(build, rng)
    subj_i = int(rng.integers(2))
    subj, ref = scene.objects[subj_i], scene.objects[1 - subj_i]
    meta = _scene_meta(cam, scene, subject=subj_i)
    if kind == "lr":
        xs = cam.to_camera(np.array([subj.center, ref.center]))[:, 0]
        truth, other = ("left", "right") if xs[0] < xs[1] else ("right", "left")
        q = f"From the camera's viewpoint, is the {subj.name} to the left or to the right of the {ref.name}?"
        why = f"In the image the {subj.name} is on the {truth} side and the {ref.name} on the {other} side"
    else:
        truth, other = ("above", "below") if subj.center[2] > ref.center[2] else ("below", "above")
        q = f"Is the {subj.name} above or below the {ref.name}?"
        why = (f"The {'top' if truth == 'above' else 'bottom'} object of the stack is the {subj.name}"
               f" and the {ref.name} is {other} it")
    options, letter = mcq(rng, truth, [other], opts, ["left", "right"] if kind == "lr" else ["above", "below"])
    think = f"{why}, so the {subj.name} is {truth} the {ref.name}. The answer is {letter}."
    return Item("relative_direction", kind, [r.rgb], q, letter, "multichoiceeval", options=options,
                think=think, scene=meta)


def gravity(rng: np.random.Generator, opts: Opts) -> Item:
    def build(rng):
        vfov = round(float(rng.uniform(40.0, 90.0)), 1)
        pitch = round(float(rng.uniform(-25.0, 25.0)), 1)
        roll = round(float(rng.uniform(-25.0, 25.0)), 1)
        if abs(pitch) > vfov / 2 - 8:
            raise Retry("horizon outside the image")
        cam = Camera(position=(0.0, 0.0, float(rng.uniform(1.3, 3.0))), yaw=rad(rng.uniform(-20, 20)),
                     pitch=rad(pitch), roll=rad(roll), vfov=vfov, width=opts.size, height=opts.size)
        scene = Scene(scatter(rng, int(rng.integers(2, 5)), x_range=(-4, 4), y_range=(3, 10)))
        r = render(scene, cam, opts.supersample)
        sky = float((r.ids == -1).mean())
        if not 0.1 < sky < 0.9:
            raise Retry("too little sky or ground")
        return cam, scene, r

    cam, scene, r = attempt(build, rng)
    roll, pitch, vfov = round(deg(cam.roll), 1), round(deg(cam.pitch), 1), cam.vfov
    answer = json.dumps({"roll": roll, "pitch": pitch, "vfov": vfov})
    q = ("Analyze the image to determine the camera's roll and pitch relative to gravity and its vertical field "
         "of view (vfov), in degrees. Roll is the rotation about the viewing direction (positive when the horizon "
         "falls to the right); pitch is positive when the camera looks up. "
         'Answer with a JSON object: {"roll": ..., "pitch": ..., "vfov": ...}.')
    tilt = "falls to the right" if roll > 0 else "rises to the right"
    updown = "below" if pitch > 0 else "above"
    think = (f"The horizon {tilt} by about {abs(roll):.0f} degrees and sits {updown} the image centre, so the camera "
             f"is pitched {'up' if pitch > 0 else 'down'} about {abs(pitch):.0f} degrees; the floor tiles' "
             f"perspective suggests a vertical field of view near {vfov:.0f} degrees.")
    meta = _scene_meta(cam, scene)
    return Item("gravity", "gravity", [r.rgb], q, answer, "gravityeval", question_type="open",
                hint=dict(GRAVITY_UNC), think=think, scene=meta)
