"""A tiny exact ray caster (numpy only): sky, ground plane, boxes, spheres and upright cylinders.

Every pixel ray is intersected analytically with every object whose screen-space bounding box it
falls in, so the depth and object-id maps are exact, not approximations of a rasterizer. Shading
is Lambertian with one fixed light; the ground gets 1 m tiles and haze towards the horizon.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .camera import Camera
from .scene import Obj, Scene

SKY = -1
GROUND = 0
_LIGHT = np.array([-0.35, -0.45, 0.82]) / np.linalg.norm([-0.35, -0.45, 0.82])
_SKY_HORIZON = np.array([200.0, 222.0, 245.0])
_SKY_ZENITH = np.array([105.0, 150.0, 220.0])
_GROUND_A = np.array([150.0, 150.0, 146.0])
_GROUND_B = np.array([128.0, 128.0, 124.0])
_EPS = 1e-6


@dataclass
class Render:
    rgb: np.ndarray
    """(H, W, 3) uint8 image."""
    depth: np.ndarray
    """(H*s, W*s) camera depth of the first hit (inf for sky), at the supersampled resolution."""
    ids: np.ndarray
    """(H*s, W*s) what each ray hit: -1 sky, 0 ground, k+1 the scene's object k."""
    scale: int

    def pixel_counts(self, n_objects: int) -> np.ndarray:
        """Visible area of each object, in output pixels."""
        counts = np.bincount((self.ids + 1).ravel(), minlength=n_objects + 2)[2:]
        return counts / float(self.scale * self.scale)


def _hit_sphere(o: Obj, origin: np.ndarray, d: np.ndarray):
    r = o.size[0] / 2.0
    oc = origin - np.asarray(o.center)
    a = np.einsum("ij,ij->i", d, d)
    b = d @ oc
    c = oc @ oc - r * r
    disc = b * b - a * c
    ok = disc >= 0
    sq = np.sqrt(np.where(ok, disc, 0.0))
    t = (-b - sq) / a
    t = np.where(ok & (t > _EPS), t, np.inf)
    pts = origin + np.where(np.isfinite(t), t, 0.0)[:, None] * d
    n = (pts - np.asarray(o.center)) / r
    return t, n


def _rot_z(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _hit_box(o: Obj, origin: np.ndarray, d: np.ndarray):
    rot = _rot_z(o.yaw)  # box -> world
    lo = (origin - np.asarray(o.center)) @ rot
    ld = d @ rot
    ld = np.where(np.abs(ld) < 1e-12, 1e-12, ld)
    half = np.asarray(o.size) / 2.0
    t1 = (-half - lo) / ld
    t2 = (half - lo) / ld
    tnear = np.minimum(t1, t2)
    tfar = np.maximum(t1, t2)
    t_enter = tnear.max(axis=1)
    axis = tnear.argmax(axis=1)
    t_exit = tfar.min(axis=1)
    hit = (t_exit >= t_enter) & (t_enter > _EPS)
    t = np.where(hit, t_enter, np.inf)
    n_local = np.zeros_like(ld)
    n_local[np.arange(len(ld)), axis] = -np.sign(ld[np.arange(len(ld)), axis])
    return t, n_local @ rot.T


def _hit_cylinder(o: Obj, origin: np.ndarray, d: np.ndarray):
    r = o.size[0] / 2.0
    cx, cy, cz = o.center
    z0, z1 = cz - o.size[2] / 2.0, cz + o.size[2] / 2.0
    ox, oy = origin[0] - cx, origin[1] - cy
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = d[:, 0] * ox + d[:, 1] * oy
    c = ox * ox + oy * oy - r * r
    a_safe = np.where(a < 1e-12, 1e-12, a)
    disc = b * b - a * c
    ok = (disc >= 0) & (a >= 1e-12)
    t_side = (-b - np.sqrt(np.where(ok, disc, 0.0))) / a_safe
    z_side = origin[2] + t_side * d[:, 2]
    t_side = np.where(ok & (t_side > _EPS) & (z_side >= z0) & (z_side <= z1), t_side, np.inf)
    dz = np.where(np.abs(d[:, 2]) < 1e-12, 1e-12, d[:, 2])
    t_cap = np.where(origin[2] > z1, (z1 - origin[2]) / dz, (z0 - origin[2]) / dz)
    px = ox + t_cap * d[:, 0]
    py = oy + t_cap * d[:, 1]
    cap_ok = (t_cap > _EPS) & (px * px + py * py <= r * r) & ((origin[2] > z1) | (origin[2] < z0))
    t_cap = np.where(cap_ok, t_cap, np.inf)
    t = np.minimum(t_side, t_cap)
    n = np.zeros_like(d)
    side = t_side <= t_cap
    ts = np.where(np.isfinite(t), t, 0.0)
    n[:, 0] = np.where(side, (ox + ts * d[:, 0]) / r, 0.0)
    n[:, 1] = np.where(side, (oy + ts * d[:, 1]) / r, 0.0)
    n[:, 2] = np.where(side, 0.0, np.sign(origin[2] - cz))
    return t, n


_HIT = {"sphere": _hit_sphere, "box": _hit_box, "cylinder": _hit_cylinder}


def cast(scene: Scene, origin: np.ndarray, dirs: np.ndarray, objects: list[int] | None = None):
    """Intersect rays ``origin + t * dirs`` (dirs (N, 3)) with the scene.

    Returns (t, ids, normals): the first hit's ray parameter (inf for sky), what was hit (-1 sky,
    0 ground, k+1 object k) and the unit surface normal there. ``objects`` restricts the test to
    some objects (all by default); the ground is always tested.
    """
    origin = np.asarray(origin, dtype=np.float64)
    n = len(dirs)
    t = np.full(n, np.inf)
    ids = np.full(n, SKY, dtype=np.int64)
    normals = np.zeros((n, 3))
    down = dirs[:, 2] < -1e-12
    tg = np.where(down, -origin[2] / np.where(down, dirs[:, 2], -1.0), np.inf)
    ground = down & (tg > _EPS)
    t[ground] = tg[ground]
    ids[ground] = GROUND
    normals[ground] = (0.0, 0.0, 1.0)
    for k in objects if objects is not None else range(len(scene.objects)):
        o = scene.objects[k]
        tk, nk = _HIT[o.shape](o, origin, dirs)
        closer = tk < t
        t[closer] = tk[closer]
        ids[closer] = k + 1
        normals[closer] = nk[closer]
    return t, ids, normals


_CORNERS = np.array([[dx, dy, dz] for dx in (-1, 1) for dy in (-1, 1) for dz in (-1, 1)], dtype=np.float64)


def screen_boxes(objects: list[Obj], cam: Camera, scale: int = 1) -> list[tuple[int, int, int, int] | None]:
    """Per object, the pixel rectangle (x0, y0, x1, y1) at the supersampled resolution that contains it;
    None if it is entirely behind the camera or off-screen; the full image if it straddles the camera plane."""
    if not objects:
        return []
    w, h = cam.width * scale, cam.height * scale
    half = np.array([[math.hypot(o.size[0], o.size[1]) / 2] * 2 + [o.size[2] / 2] for o in objects])
    centers = np.array([o.center for o in objects], dtype=np.float64)
    p = cam.project((centers[:, None, :] + _CORNERS[None] * half[:, None, :]).reshape(-1, 3)).reshape(-1, 8, 3)
    boxes: list[tuple[int, int, int, int] | None] = []
    for q in p:
        behind = q[:, 2] <= 0.05
        if behind.all():
            boxes.append(None)
            continue
        if behind.any():
            boxes.append((0, 0, w, h))
            continue
        x0 = max(0, int(math.floor(q[:, 0].min() * scale)) - 1)
        x1 = min(w, int(math.ceil(q[:, 0].max() * scale)) + 1)
        y0 = max(0, int(math.floor(q[:, 1].min() * scale)) - 1)
        y1 = min(h, int(math.ceil(q[:, 1].max() * scale)) + 1)
        boxes.append((x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None)
    return boxes


def _shade(scene: Scene, origin: np.ndarray, d: np.ndarray, t: np.ndarray, ids: np.ndarray,
           normals: np.ndarray) -> np.ndarray:
    """Colours of all rays at once: ``lut[index] * a + horizon * b + (zenith - horizon) * c`` with
    per-ray weights (sky: b = 1, c = elevation; ground: tile colour, a = 1 - haze, b = haze;
    objects: their colour, a = Lambert + ambient). One gather and three products, no masks."""
    sky, ground = ids == SKY, ids == GROUND
    norm = np.sqrt(np.einsum("ij,ij->i", d, d))
    tt = np.where(sky, 0.0, t)
    haze = 1.0 - np.exp(-tt * norm / 45.0)
    lam = 0.5 + 0.5 * np.clip(normals @ _LIGHT, 0.0, 1.0)
    if scene.checker:
        tile = ((np.floor(origin[0] + tt * d[:, 0]) + np.floor(origin[1] + tt * d[:, 1])) % 2).astype(np.int64)
    else:
        tile = 0
    index = np.where(sky, 0, np.where(ground, 1 + tile, ids + 2))
    a = np.where(sky, 0.0, np.where(ground, 1.0 - haze, lam))
    b = np.where(ground, haze, sky.astype(np.float64))
    c = np.where(sky, np.clip(d[:, 2] / norm / 0.7, 0.0, 1.0), 0.0)
    lut = np.array([(0, 0, 0), _GROUND_A, _GROUND_B, *(o.rgb for o in scene.objects)], dtype=np.float64)
    return lut[index] * a[:, None] + _SKY_HORIZON * b[:, None] + (_SKY_ZENITH - _SKY_HORIZON) * c[:, None]


def render(scene: Scene, cam: Camera, scale: int = 1) -> Render:
    """Render ``scene`` from ``cam``; ``scale`` > 1 supersamples (antialiasing)."""
    rays = cam.pixel_rays(scale)
    h, w = rays.shape[:2]
    origin = cam.center
    dz = rays[..., 2]
    down = dz < -1e-12
    t = np.where(down, -origin[2] / np.where(down, dz, -1.0), np.inf)  # the ground plane z = 0
    ground = down & (t > _EPS) if origin[2] > 0 else np.zeros_like(down)
    t = np.where(ground, t, np.inf)
    ids = np.where(ground, GROUND, SKY)
    normals = np.zeros((h, w, 3))
    normals[..., 2] = 1.0  # only read where the ground is the first hit
    for k, (o, box) in enumerate(zip(scene.objects, screen_boxes(scene.objects, cam, scale))):
        if box is None:
            continue
        x0, y0, x1, y1 = box
        sub = rays[y0:y1, x0:x1].reshape(-1, 3)
        tk, nk = _HIT[o.shape](o, origin, sub)
        tk = tk.reshape(y1 - y0, x1 - x0)
        closer = tk < t[y0:y1, x0:x1]
        t[y0:y1, x0:x1][closer] = tk[closer]
        ids[y0:y1, x0:x1][closer] = k + 1
        normals[y0:y1, x0:x1][closer] = nk.reshape(y1 - y0, x1 - x0, 3)[closer]

    img = _shade(scene, origin, rays.reshape(-1, 3), t.ravel(), ids.ravel(), normals.reshape(-1, 3)).reshape(h, w, 3)
    if scale > 1:
        img = img.reshape(cam.height, scale, cam.width, scale, 3).mean(axis=(1, 3))
    rgb = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return Render(rgb=rgb, depth=t, ids=ids, scale=scale)


def visible(scene: Scene, cam: Camera, point: np.ndarray, obj_id: int, tol: float = 0.02) -> bool:
    """Whether the world ``point`` on object ``obj_id`` (0 = ground) is in the image and not occluded."""
    u, v, z = cam.project(np.asarray(point)[None])[0]
    if z <= 0 or not (0 <= u < cam.width and 0 <= v < cam.height):
        return False
    d = (np.asarray(point) - cam.center) / z
    t, ids, _ = cast(scene, cam.center, d[None])
    return bool(ids[0] == obj_id and abs(t[0] - z) <= tol * z)


def first_hit(scene: Scene, cam: Camera, point: np.ndarray) -> int:
    """What the pixel ray towards world ``point`` hits first (-1 sky, 0 ground, k+1 object k), or -2 if
    the point is outside the image."""
    u, v, z = cam.project(np.asarray(point)[None])[0]
    if z <= 0 or not (0 <= u < cam.width and 0 <= v < cam.height):
        return -2
    d = (np.asarray(point) - cam.center) / z
    return int(cast(scene, cam.center, d[None])[1][0])


# ---- 2-D overlays (visual prompts) --------------------------------------------------------------

MARKER_RGB = {"white": (255, 255, 255), "magenta": (255, 0, 255), "cyan": (0, 235, 235), "black": (0, 0, 0)}


def draw_markers(rgb: np.ndarray, points: list[tuple[float, float]], colors: list[str],
                 labels: list[str] | None = None) -> np.ndarray:
    """Filled circles (with a contrasting outline) at pixel positions; letters next to them when
    the image is large enough to read them (>= 112 px)."""
    img = Image.fromarray(rgb)
    draw = ImageDraw.Draw(img)
    h, w = rgb.shape[:2]
    r = max(2.0, min(h, w) / 28.0)
    for i, ((u, v), color) in enumerate(zip(points, colors)):
        fill = MARKER_RGB[color]
        outline = (255, 255, 255) if color == "black" else (0, 0, 0)
        draw.ellipse([u - r, v - r, u + r, v + r], fill=fill, outline=outline, width=1)
        if labels and min(h, w) >= 112:
            draw.text((u + r + 1, v - r - 1), labels[i], fill=fill)
    return np.asarray(img)
