"""``cogmapeval``: a cognitive map (objects on a 2-D grid with facings) plus a multiple-choice answer.

score = 0.2 * answer correct + 0.6 * map similarity + 0.2 * rotation-invariant isomorphism, with MindCube's
map similarity as the benchmark scorer uses it:
- the generated map must be a valid map (simple ``{"name": {"position": [x, y], "facing": ..}}`` or complex
  ``{"objects": [...], "views": [...]}``), otherwise similarity 0;
- for each of 6 rotations (identity, 90/180/270 degrees about z, 90 about x, 90 about y) the pairwise
  relations (up/down/left/right from the larger coordinate difference; inner/outer for objects closer than
  0.5) between annotated objects are compared, and facings too;
- similarity = 0.7 * share of annotated relations reproduced + 0.3 * share of annotated facings reproduced,
  taking the best rotation; isomorphic = every annotated relation reproduced under that rotation.

Only relations between annotated objects are ever compared, so they are the only ones computed (the
reference builds all pairs of the generated map, which is quadratic in an adversarially long answer).
"""

from __future__ import annotations

import numpy as np

from rewards.metrics.cogmap_parse import extract_json_object, extract_letter
from rewards.metrics.record import Metric

_FACINGS = {"up", "down", "left", "right", "inner", "outer", "top", "bottom", "north", "south", "east", "west",
            "front", "back", "into", "out", "inside", "outside", "forward", "backward"}
_FACING_SYNONYMS = {"top": "up", "bottom": "down", "north": "up", "south": "down", "east": "right", "west": "left",
                    "front": "inner", "back": "outer", "into": "inner", "out": "outer", "inside": "inner",
                    "outside": "outer", "forward": "inner", "backward": "outer"}
_Z_TURNS = {"up": ("up", "right", "down", "left"), "right": ("right", "down", "left", "up"),
            "down": ("down", "left", "up", "right"), "left": ("left", "up", "right", "down")}
_X_TURN = {"up": "inner", "down": "outer", "inner": "down", "outer": "up", "left": "left", "right": "right"}
_Y_TURN = {"left": "inner", "right": "outer", "inner": "right", "outer": "left", "up": "up", "down": "down"}


def _rotations() -> list[tuple[str, np.ndarray, object]]:
    out = [("identity", np.eye(3), lambda f: f)]
    for angle in (90, 180, 270):
        rad = np.radians(angle)
        c, s = np.cos(rad), np.sin(rad)
        turn = angle // 90
        out.append((f"z_rot_{angle}", np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]),
                    lambda f, t=turn: _Z_TURNS[f][t % 4] if f in _Z_TURNS else f))
    out.append(("x_rot_90", np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]]), lambda f: _X_TURN.get(f, f) if f else f))
    out.append(("y_rot_90", np.array([[0, 0, 1], [0, 1, 0], [-1, 0, 0]]), lambda f: _Y_TURN.get(f, f) if f else f))
    return out


_ROTATIONS = _rotations()


def _valid_position(pos) -> bool:
    if not isinstance(pos, list) or len(pos) < 2:
        return False
    try:
        float(pos[0])
        float(pos[1])
        return True
    except (ValueError, TypeError):
        return False


def _valid_facing(facing) -> bool:
    if facing is None:
        return True
    if isinstance(facing, list):
        if not facing:
            return True
        facing = facing[0]
    return isinstance(facing, str) and facing.lower().strip() in _FACINGS


def _entry_ok(entry) -> bool:
    return ("position" in entry and _valid_position(entry["position"])
            and ("facing" not in entry or _valid_facing(entry["facing"])))


def is_complex(cogmap) -> bool:
    return isinstance(cogmap, dict) and "objects" in cogmap and isinstance(cogmap.get("objects"), list)


def is_valid_map(cogmap) -> bool:
    """Every entry is a dict with a numeric [x, y] position and, if present, a known facing.

    Every entry is checked even after a bad one (no short cut), as in the scorer: a position whose number
    cannot become a float (an integer beyond float range) raises OverflowError wherever it is.
    """
    if not isinstance(cogmap, dict):
        return False
    if not is_complex(cogmap):
        checks = [isinstance(v, dict) and _entry_ok(v) for v in cogmap.values()]
        return all(checks)
    groups = [cogmap["objects"]]
    views_ok = True
    if "views" in cogmap:
        views_ok = isinstance(cogmap["views"], list)
        if views_ok:
            groups.append(cogmap["views"])
    checks = [isinstance(e, dict) and (_entry_ok(e) and "name" in e) for group in groups for e in group]
    return views_ok and all(checks)


def normalize_facing(facing) -> str | None:
    if isinstance(facing, list):
        if not facing:
            return None
        facing = facing[0]
    if not isinstance(facing, str):
        return None
    facing = facing.lower().strip()
    return _FACING_SYNONYMS.get(facing, facing) if facing else None


def _position(entry) -> np.ndarray:
    pos = entry["position"] if "position" in entry else None
    try:
        xy = [float(pos[0]), float(pos[1])] if isinstance(pos, list) and len(pos) >= 2 else [0.0, 0.0]
    except (ValueError, TypeError):
        xy = [0.0, 0.0]
    return np.array(xy, dtype=float)


def map_entries(cogmap: dict) -> dict:
    """name -> (position array, normalized facing) for every named object (and view) of a map."""
    out = {}
    if "objects" in cogmap:
        for group in (cogmap.get("objects", []), cogmap.get("views", [])):
            for entry in group:
                if "name" not in entry:
                    continue
                out[entry["name"]] = (_position(entry), normalize_facing(entry.get("facing", None)))
    else:
        for name, entry in cogmap.items():
            if isinstance(entry, dict):
                out[name] = (_position(entry), normalize_facing(entry.get("facing", None)))
    return out


def relation(pos1: np.ndarray, pos2: np.ndarray, facing1, facing2) -> str | None:
    """Where object 2 is from object 1: right/left/down/up by the larger axis difference (y grows downward);
    inner/outer (from the facings, or inner when closer than 0.2) for objects closer than 0.5."""
    dx = pos2[0] - pos1[0]
    dy = pos2[1] - pos1[1]
    if np.sqrt(dx ** 2 + dy ** 2) < 0.5:
        if facing1 == "inner" or facing2 == "outer":
            return "inner"
        if facing1 == "outer" or facing2 == "inner":
            return "outer"
        return "inner" if np.linalg.norm(pos1 - pos2) < 0.2 else None
    if abs(dx) > abs(dy):
        return "right" if dx > 0 else "left"
    return "down" if dy > 0 else "up"


def _relations(entries: dict, names: list) -> dict:
    return {(a, b): relation(entries[a][0], entries[b][0], entries[a][1], entries[b][1])
            for a in names for b in names if a != b}


def _empty(parsable: bool = False) -> dict:
    return {"parsable_json": parsable, "valid_format": False, "valid_graph": False, "coverage": 0.0,
            "overall_similarity": 0.0, "directional_similarity": 0.0, "facing_similarity": 0.0,
            "rotation_invariant_isomorphic": False, "best_rotation": None}


def map_similarity(generated, annotated) -> dict:
    """MindCube's rotation-invariant similarity of a generated map to the annotated one."""
    if not generated or not annotated or not isinstance(generated, dict) or not isinstance(annotated, dict):
        return _empty()
    result = _empty(parsable=True)
    if not is_complex(generated):  # a list of positions per object counts its first entry
        generated = {k: (v[0] if isinstance(v, list) else v) for k, v in generated.items()}
    gen_ok, ann_ok = is_valid_map(generated), is_valid_map(annotated)  # both checked: either may raise
    result["valid_format"] = gen_ok and ann_ok
    if not result["valid_format"]:
        return result
    gen, ann = map_entries(generated), map_entries(annotated)
    if not gen or not ann:
        return result
    result["valid_graph"] = True
    ann_names = set(ann)
    if "views" not in generated and "objects" in annotated:  # a simple map is compared with objects only
        ann_names = {e["name"] for e in annotated.get("objects", []) if "name" in e}
    common = [n for n in ann_names if n in gen]
    result["coverage"] = len(common) / len(ann_names) if ann_names else 0
    if not common:
        return result
    ann_rel = _relations(ann, list(ann_names))
    complete = len(common) == len(ann_names)  # isomorphism needs every annotated object in the map
    best = 0.0
    for name, matrix, turn in _ROTATIONS:
        rotated = {n: ((matrix @ np.append(gen[n][0], 0.0).reshape(3))[:2], turn(gen[n][1])) for n in common}
        gen_rel = _relations(rotated, common)
        matched = total = 0
        for pair, rel in gen_rel.items():
            if ann_rel[pair] is not None:
                total += 1
                matched += rel == ann_rel[pair]
        directional = matched / total if total > 0 else 0
        facings = [(ann[n][1], rotated[n][1]) for n in common if ann[n][1]]
        facing = sum(a == g for a, g in facings) / len(facings) if facings else 1.0
        overall = 0.7 * directional + 0.3 * facing
        if overall > best:
            best = overall
            result.update(overall_similarity=overall, directional_similarity=directional, facing_similarity=facing,
                          best_rotation=name,
                          rotation_invariant_isomorphic=complete and all(gen_rel[p] == r for p, r in ann_rel.items()))
    return result


def cogmapeval(response: str, answer, extra_info: dict) -> dict:
    """``answer``: the option letter; ``extra_info``: ``cogmap`` (the annotated map, JSON text or dict) and
    ``id_type`` (MindCube's setting id; only checked to be text, as the scorer requires)."""
    letter = extract_letter(response)
    annotated = extra_info["cogmap"]
    if isinstance(annotated, str):
        annotated = extract_json_object(annotated)
    id_type = extra_info["id_type"]
    if id_type and not isinstance(id_type, str):
        raise TypeError(f"id_type must be text, got {type(id_type).__name__}")
    try:
        generated = extract_json_object(response)
    except Exception:  # e.g. JSON nested too deep: no map, as in the scorer
        generated = None
    correct = bool(letter) and letter == answer
    sim = map_similarity(generated, annotated)
    score = 0.2 * float(correct) + 0.6 * float(sim["overall_similarity"]) + 0.2 * float(sim["rotation_invariant_isomorphic"])
    return {"score": score, "details": {"answer_letter": letter, "answer_correct": correct, **sim}}


RECORDS = (Metric("cogmapeval", cogmapeval, answer="letter"),)
