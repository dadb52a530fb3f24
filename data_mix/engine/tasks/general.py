"""General visual-instruction stand-ins (colours, shapes, counts) for the ``general`` group: single
image, multi-image and video. LLaVA format only; they carry no SpatialTree tags."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..camera import Camera
from ..render import render
from ..scene import SHAPES, Scene, scatter
from .base import Item, Opts, Retry, attempt, ground_camera, pick_kind, rad

SHORT = "Answer the question using a single word or phrase."
SINGLE_KINDS = {"count": 0.2, "count_shape": 0.2, "color": 0.2, "shape": 0.15, "exists": 0.15, "caption": 0.1}
MULTI_KINDS = {"which_image": 0.35, "total_count": 0.25, "same_count": 0.15, "multiview_count": 0.25}
VIDEO_KINDS = {"motion": 0.4, "count": 0.3, "color": 0.3}
VIDEO_FRAMES = 8
_ORD = ["first", "second", "third"]


def _min_area(size: int) -> float:
    return 4.0 * (size / 56.0) ** 2


def _scene_image(rng, opts: Opts, n_range=(1, 6), cam: Camera | None = None):
    """A camera, a scene whose objects are all clearly visible, and its render."""
    def build(rng):
        c = cam or ground_camera(rng, opts.size, yaw_deg=(-10, 10))
        scene = Scene(scatter(rng, int(rng.integers(*n_range)), x_range=(-2.0, 2.0), y_range=(3.0, 7.0)))
        r = render(scene, c, opts.supersample)
        if (r.pixel_counts(len(scene.objects)) < _min_area(opts.size)).any():
            raise Retry("an object is not clearly visible")
        return c, scene, r
    return attempt(build, rng)


def _plural(shape: str, n: int) -> str:
    return shape if n == 1 else ("boxes" if shape == "box" else shape + "s")


def _caption(scene: Scene) -> str:
    names = [f"a {o.name}" for o in sorted(scene.objects, key=lambda o: o.center[0])]
    if len(names) == 1:
        return f"A single {scene.objects[0].name} standing on a tiled floor under a blue sky."
    listed = ", ".join(names[:-1]) + " and " + names[-1]
    return f"From left to right: {listed}, standing on a tiled floor under a blue sky."


def _single_qa(rng, scene: Scene, kind: str) -> tuple[str, str]:
    objs = scene.objects
    shapes = [o.shape for o in objs]
    if kind == "count":
        return f"How many objects are there in the image? {SHORT}", str(len(objs))
    if kind == "count_shape":
        s = str(rng.choice(SHAPES))
        return f"How many {_plural(s, 2)} are there in the image? {SHORT}", str(shapes.count(s))
    if kind == "color":
        unique = [o for o in objs if shapes.count(o.shape) == 1]
        if not unique:
            raise Retry("no shape occurs exactly once")
        o = unique[int(rng.integers(len(unique)))]
        return f"What color is the {o.shape}? {SHORT}", o.color
    if kind == "shape":
        o = objs[int(rng.integers(len(objs)))]
        return f"What shape is the {o.color} object? {SHORT}", o.shape
    if kind == "exists":
        o = objs[int(rng.integers(len(objs)))]
        if rng.random() < 0.5:
            return f"Is there a {o.name} in the image? {SHORT}", "Yes"
        others = [s for s in SHAPES if s != o.shape]
        return f"Is there a {o.color} {others[int(rng.integers(len(others)))]} in the image? {SHORT}", "No"
    return "Describe the image briefly.", _caption(scene)


def general_vqa(rng: np.random.Generator, opts: Opts) -> Item:
    def build(rng):
        cam, scene, r = _scene_image(rng, opts)
        n_turns = int(rng.integers(1, 4))
        kinds = [pick_kind(rng, SINGLE_KINDS, opts.kinds) for _ in range(n_turns)]
        turns = [_single_qa(rng, scene, k) for k in kinds]
        return cam, scene, r, kinds, turns

    cam, scene, r, kinds, turns = attempt(build, rng)
    (q, a), rest = turns[0], turns[1:]
    meta = {"cameras": [cam.to_dict()], **scene.to_dict(), "kinds": kinds}
    return Item("general_vqa", kinds[0], [r.rgb], q, a, extra_turns=rest, scene=meta)


def general_vqa_multi(rng: np.random.Generator, opts: Opts) -> Item:
    kind = pick_kind(rng, MULTI_KINDS, opts.kinds)
    n_img = int(rng.integers(2, 4))
    if kind == "multiview_count":
        def build(rng):
            cam, scene, r = _scene_image(rng, opts, n_range=(2, 6))
            cams, rgbs = [cam], [r.rgb]
            for _ in range(n_img - 1):
                c = cam.walked(right=float(rng.uniform(-1.5, 1.5)), forward=float(rng.uniform(-0.5, 0.5)))
                c = c.panned(rad(rng.uniform(-15, 15)))
                cams.append(c)
                rgbs.append(render(scene, c, opts.supersample).rgb)
            return cams, [scene], rgbs
        cams, scenes, rgbs = attempt(build, rng)
        n = len(scenes[0].objects)
        q = f"These images show one scene from different viewpoints. How many distinct objects are in the scene? {SHORT}"
        a = str(n)
    else:
        views = [_scene_image(rng, opts, n_range=(1, 4)) for _ in range(n_img)]
        cams, scenes, rgbs = [v[0] for v in views], [v[1] for v in views], [v[2].rgb for v in views]
        if kind == "which_image":
            owners = {}
            for i, s in enumerate(scenes):
                for o in s.objects:
                    owners.setdefault(o.name, set()).add(i)
            unique = sorted(n for n, idx in owners.items() if len(idx) == 1)
            if not unique:
                return general_vqa_multi(rng, replace(opts, kinds=("total_count",)))
            name = unique[int(rng.integers(len(unique)))]
            q = f"Which image contains the {name}? {SHORT}"
            a = f"The {_ORD[next(iter(owners[name]))]} image"
        elif kind == "total_count":
            s = str(rng.choice(SHAPES))
            total = sum(o.shape == s for sc in scenes for o in sc.objects)
            q = f"How many {_plural(s, 2)} are there in all the images together? {SHORT}"
            a = str(total)
        else:
            counts = [len(sc.objects) for sc in scenes]
            q = f"Do all the images show the same number of objects? {SHORT}"
            a = "Yes" if len(set(counts)) == 1 else "No"
    meta = {"cameras": [c.to_dict() for c in cams], "scenes": [s.to_dict() for s in scenes]}
    return Item("general_vqa_multi", kind, rgbs, q, a, scene=meta)


def general_vqa_video(rng: np.random.Generator, opts: Opts) -> Item:
    kind = pick_kind(rng, VIDEO_KINDS, opts.kinds)
    direction = ("left", "right", "forward", "backward")[int(rng.integers(4))]

    def build(rng):
        cam0, scene, r0 = _scene_image(rng, opts, n_range=(2, 5))
        dist = float(rng.uniform(0.8, 1.6))
        vec = {"left": (-1, 0), "right": (1, 0), "forward": (0, 1), "backward": (0, -1)}[direction]
        frames, cams = [], []
        for k in range(VIDEO_FRAMES):
            f = k / (VIDEO_FRAMES - 1)
            c = cam0.walked(right=vec[0] * dist * f, forward=vec[1] * dist * f) if k else cam0
            r = render(scene, c, opts.supersample) if k else r0
            if k == VIDEO_FRAMES - 1 and (r.pixel_counts(len(scene.objects)) < _min_area(opts.size)).any():
                raise Retry("an object leaves the view")
            frames.append(r.rgb)
            cams.append(c)
        return cams, scene, frames

    cams, scene, frames = attempt(build, rng)
    if kind == "motion":
        q, a = f"In which direction does the camera move in this video? {SHORT}", direction
    elif kind == "count":
        q, a = f"How many objects appear in the video? {SHORT}", str(len(scene.objects))
    else:
        o = scene.objects[int(rng.integers(len(scene.objects)))]
        q, a = f"What color is the {o.shape} in the video? {SHORT}", o.color
        if sum(x.shape == o.shape for x in scene.objects) > 1:
            q = f"What color is the {_ORD[0]} {o.shape} from the left at the start of the video? {SHORT}"
            left = sorted((x for x in scene.objects if x.shape == o.shape),
                          key=lambda x: cams[0].to_camera(np.asarray(x.center)[None])[0, 0])
            a = left[0].color
    meta = {"cameras": [c.to_dict() for c in cams], **scene.to_dict(), "direction": direction}
    return Item("general_vqa_video", kind, [], q, a, video=frames, scene=meta)
