"""Two-view tasks: correspondence (L1), ego-motion (L1), memory retrieval (L2)."""

from __future__ import annotations

import math

import numpy as np

from ..camera import Camera
from ..render import cast, draw_markers, first_hit, render, visible
from ..scene import Scene, scatter
from .base import Item, Opts, Retry, attempt, ground_camera, mcq, rad

CANDIDATE_COLORS = ("magenta", "cyan", "white", "black")
QUERY_COLOR = "white"
EGO_DIRECTIONS = ("left", "right", "forward", "backward")


def _min_area(size: int) -> float:
    return 4.0 * (size / 56.0) ** 2


def _hit(scene: Scene, cam: Camera, u: float, v: float) -> tuple[np.ndarray, int]:
    """The 3-D point seen at pixel position (u, v) and what it lies on (0 ground, k+1 object k, -1 sky)."""
    d = cam.ray(u, v)
    t, ids, _ = cast(scene, cam.center, d[None])
    if not np.isfinite(t[0]):
        return np.full(3, np.nan), -1
    return cam.center + t[0] * d, int(ids[0])


def _surface(scene: Scene, obj_id: int) -> str:
    return "ground" if obj_id == 0 else scene.objects[obj_id - 1].name


def correspondence(rng: np.random.Generator, opts: Opts) -> Item:
    size = opts.size
    margin = max(3.0, 0.08 * size)
    min_gap = max(6.0, 0.14 * size)

    def inside(u, v):
        return margin <= u <= size - margin and margin <= v <= size - margin

    def build(rng):
        cam1 = ground_camera(rng, size, yaw_deg=(-10.0, 10.0))
        scene = Scene(scatter(rng, int(rng.integers(3, 6)), x_range=(-2.5, 2.5), y_range=(2.5, 7.0)))
        shift = float(rng.uniform(0.5, 1.3) * rng.choice([-1.0, 1.0]))
        cam2 = cam1.walked(right=shift, forward=float(rng.uniform(-0.4, 0.8)))
        cam2 = cam2.panned(-math.copysign(rad(rng.uniform(4.0, 14.0)), shift))
        r1 = render(scene, cam1, opts.supersample)
        s = r1.scale
        ids1 = r1.ids[s // 2::s, s // 2::s]
        lo, hi = int(math.ceil(margin)), int(size - math.ceil(margin))
        on_obj = rng.random() < 0.7
        ys, xs = np.nonzero(ids1[lo:hi, lo:hi] > 0) if on_obj else np.nonzero(ids1[lo:hi, lo:hi] == 0)
        if len(xs) == 0:
            raise Retry("no query pixel")
        k = int(rng.integers(len(xs)))
        u1, v1 = xs[k] + lo + 0.5, ys[k] + lo + 0.5
        x3d, oid = _hit(scene, cam1, u1, v1)
        if oid < 0 or not visible(scene, cam2, x3d, oid):
            raise Retry("query point not visible in view 2")
        u2, v2, _ = cam2.project(x3d[None])[0]
        if not inside(u2, v2):
            raise Retry("query point too close to the border of view 2")
        cands = [(float(u2), float(v2), x3d, oid)]
        for _ in range(300):
            if len(cands) == 4:
                break
            u, v = rng.integers(lo, hi) + 0.5, rng.integers(lo, hi) + 0.5
            y3d, yid = _hit(scene, cam2, u, v)
            if yid < 0 or np.linalg.norm(y3d - x3d) < 0.5:
                continue
            if all(math.hypot(u - c[0], v - c[1]) >= min_gap for c in cands):
                cands.append((float(u), float(v), y3d, yid))
        if len(cands) < 4:
            raise Retry("not enough distinct candidate points")
        r2 = render(scene, cam2, opts.supersample)
        return cam1, cam2, scene, r1, r2, (u1, v1), cands

    cam1, cam2, scene, r1, r2, (u1, v1), cands = attempt(build, rng)
    order = rng.permutation(4)  # cands[0] is the true point; order[i] = candidate shown as option i
    colors = [CANDIDATE_COLORS[int(c)] for c in rng.permutation(4)]
    if opts.option_order == "fixed":  # candidates left to right, colours in a fixed order
        order = np.argsort([c[0] for c in cands], kind="stable")
        colors = list(CANDIDATE_COLORS)
    shown = [cands[int(i)] for i in order]
    letters = "ABCD"
    img1 = draw_markers(r1.rgb, [(u1, v1)], [QUERY_COLOR])
    img2 = draw_markers(r2.rgb, [(c[0], c[1]) for c in shown], colors, labels=list(letters))
    options = [f"{letters[i]}. the {colors[i]} point" for i in range(4)]
    true_i = int(np.nonzero(order == 0)[0][0])
    letter = letters[true_i]
    q = ("The first image has one point marked with a white dot. The second image shows the same scene from "
         "another viewpoint with four marked points. Which marked point in the second image is the same 3D point "
         "as the white dot in the first image?")
    where = _surface(scene, cands[0][3])
    think = (f"The white dot lies on the {where}. The camera moved between the views; following the {where} into "
             f"the second image, the {colors[true_i]} point is on the same spot. The answer is {letter}.")
    meta = {"cameras": [cam1.to_dict(), cam2.to_dict()], **scene.to_dict(),
            "query": {"pixel": [u1, v1], "point": [float(x) for x in cands[0][2]], "on": cands[0][3]},
            "candidates": [{"letter": letters[i], "color": colors[i], "pixel": [c[0], c[1]],
                            "point": [float(x) for x in c[2]], "on": c[3]} for i, c in enumerate(shown)]}
    return Item("correspondence", "correspondence", [img1, img2], q, letter, "multichoiceeval",
                options=options, think=think, scene=meta)


def ego_motion(rng: np.random.Generator, opts: Opts) -> Item:
    direction = EGO_DIRECTIONS[int(rng.integers(4))]

    def build(rng):
        cam1 = ground_camera(rng, opts.size, yaw_deg=(-15.0, 15.0))
        scene = Scene(scatter(rng, int(rng.integers(3, 6)), x_range=(-3.0, 3.0), y_range=(3.0, 8.0)))
        step = float(rng.uniform(0.8, 1.6))
        move = {"left": dict(right=-step), "right": dict(right=step), "forward": dict(forward=step),
                "backward": dict(forward=-step)}[direction]
        cam2 = cam1.walked(**move)
        r1, r2 = render(scene, cam1, opts.supersample), render(scene, cam2, opts.supersample)
        both = (r1.pixel_counts(len(scene.objects)) >= _min_area(opts.size)) & (
            r2.pixel_counts(len(scene.objects)) >= _min_area(opts.size))
        if both.sum() < 2:
            raise Retry("fewer than two objects visible in both views")
        return cam1, cam2, scene, r1, r2, step

    cam1, cam2, scene, r1, r2, step = attempt(build, rng)
    others = [d for d in EGO_DIRECTIONS if d != direction]
    options, letter = mcq(rng, direction, others, opts, list(EGO_DIRECTIONS))
    cue = {"left": "the objects shift to the right in the second image while keeping their size",
           "right": "the objects shift to the left in the second image while keeping their size",
           "forward": "the objects grow and spread outwards in the second image",
           "backward": "the objects shrink and move towards the centre in the second image"}[direction]
    q = ("The two images were taken by the same camera, which moved without turning. "
         "In which direction did the camera move from the first image to the second?")
    think = f"Between the views {cue}, so the camera moved {direction} (about {step:.1f} m). The answer is {letter}."
    meta = {"cameras": [cam1.to_dict(), cam2.to_dict()], **scene.to_dict(), "direction": direction}
    return Item("ego_motion", "ego_motion", [r1.rgb, r2.rgb], q, letter, "multichoiceeval", options=options,
                think=think, scene=meta)


def memory(rng: np.random.Generator, opts: Opts) -> Item:
    def build(rng):
        cam1 = ground_camera(rng, opts.size, yaw_deg=(-10.0, 10.0))
        scene = Scene(scatter(rng, 4, x_range=(-2.2, 2.2), y_range=(3.0, 7.0), gap=0.4))
        cam2 = cam1.walked(right=float(rng.uniform(-1.2, 1.2)), forward=float(rng.uniform(-0.8, 0.5)))
        cam2 = cam2.panned(rad(rng.uniform(-12.0, 12.0)))
        gone = int(rng.integers(4))
        r1 = render(scene, cam1, opts.supersample)
        if (r1.pixel_counts(4) < _min_area(opts.size)).any():
            raise Retry("an object is hidden in view 1")
        o = scene.objects[gone]
        if first_hit(scene, cam2, np.asarray(o.center)) != gone + 1:
            raise Retry("the removed object would not be visible in view 2 anyway")
        later = scene.without(gone)
        r2 = render(later, cam2, opts.supersample)
        if (r2.pixel_counts(3) < _min_area(opts.size)).any():
            raise Retry("a remaining object is hidden in view 2")
        return cam1, cam2, scene, gone, r1, r2

    cam1, cam2, scene, gone, r1, r2 = attempt(build, rng)
    names = [o.name for o in scene.objects]
    u = cam1.project(np.array([o.center for o in scene.objects]))[:, 0]
    options, letter = mcq(rng, f"the {names[gone]}", [f"the {n}" for i, n in enumerate(names) if i != gone], opts,
                          [f"the {names[i]}" for i in np.argsort(u, kind="stable")])
    q = ("The first image shows a scene; the second image shows the same scene later, from another viewpoint. "
         "Which object was in the first image but is gone in the second?")
    kept = ", ".join(f"the {n}" for i, n in enumerate(names) if i != gone)
    think = (f"The first image shows {', '.join('the ' + n for n in names)}. The second still shows {kept}, but "
             f"the {names[gone]} is missing where it stood. The answer is {letter}.")
    meta = {"cameras": [cam1.to_dict(), cam2.to_dict()], **scene.to_dict(), "removed": gone}
    return Item("memory", "memory", [r1.rgb, r2.rgb], q, letter, "multichoiceeval", options=options, think=think,
                scene=meta)
