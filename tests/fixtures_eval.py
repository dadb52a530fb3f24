"""Shared helpers of the eval_hooks tests: the SpatialTree weights written out independently of
rewards.taxonomy (from the public scorer's spatree_hierarchy.json), and a recomputation from them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# level -> (weight, {ability: (weight, {leaf: weight})})
WEIGHTS: dict[str, tuple[float, dict[str, tuple[float, dict[str, float]]]]] = {
    "L1": (0.25, {
        "Geometry": (0.5, {"Distance": 0.65, "Shape": 0.1, "Size": 0.25}),
        "Localization": (0.2, {"3D Detection": 0.65, "3D Grounding": 0.35}),
        "Motion": (0.05, {"Allo": 0.5, "Ego": 0.5}),
        "Orientation": (0.1, {"Gravity": 0.4, "Object Orientation": 0.6}),
        "Relation": (0.15, {"Correspondence": 0.5, "Relative Direction": 0.5}),
    }),
    "L2": (0.25, {
        "Memory": (1.0, {"Cognitive Map": 0.7, "Memory Retrieval": 0.3}),
        "Underst.": (1.0, {"Affordance": 0.25, "Motion Understanding": 0.25, "Perspective Taking": 0.05,
                           "Relation Understanding": 0.35, "Spatial Caption": 0.1}),
    }),
    "L3": (0.25, {
        "Caus. Reas.": (0.65, {"Dynamics": 0.3, "Geometry Puzzles": 0.55, "Relation": 0.15}),
        "Seq. Plan.": (0.35, {"Operation": 0.6, "Route": 0.4}),
    }),
    "L4": (0.25, {
        "Goal-Driven Execution": (0.5, {"Agentic Navigation": 0.5, "Robotic Arm": 0.5}),
        "Open-world Exploration": (0.5, {"Knowledge Acquisition": 0.7, "Self-Goaling": 0.3}),
    }),
}


def recompute_root(leaf_scores: Mapping[str, float], mode: str) -> float | None:
    """Root score from leaf scores keyed "L1/Geometry/Distance", by hand from WEIGHTS.

    reference: a missing leaf counts 0 and every weight counts; renormalize: only children with a
    score count and the weights are renormalized over them.
    """
    def wmean(pairs: list[tuple[float, float | None]]) -> float | None:
        if mode == "reference":
            pairs = [(w, 0.0 if s is None else s) for w, s in pairs]
        pairs = [(w, s) for w, s in pairs if s is not None]
        total = sum(w for w, _ in pairs)
        return sum(w * s for w, s in pairs) / total if total else None

    levels = []
    for lvl, (lw, abilities) in WEIGHTS.items():
        abs_ = []
        for ab, (aw, leaves) in abilities.items():
            abs_.append((aw, wmean([(w, leaf_scores.get(f"{lvl}/{ab}/{leaf}")) for leaf, w in leaves.items()])))
        levels.append((lw, wmean(abs_)))
    return wmean(levels)


def leaf_scores_of(summary: Mapping[str, Any]) -> dict[str, float]:
    """Leaf key -> score of the leaves a summary's tree scored from samples (count > 0)."""
    out: dict[str, float] = {}

    def visit(node: Mapping[str, Any]) -> None:
        children = node.get("children")
        if not children:
            if node["count"] > 0:
                out[node["key"]] = node["score"]
            return
        for child in children:
            visit(child)

    visit(summary["tree"])
    return out


# A small hand-made bench in the public schema (for tests that must not depend on the engine's output):
# (leaf tags, metricfunc, question, options, answer)
HAND_RECORDS = [
    (("L1", "Geometry", "Distance"), "multichoiceeval", "Which object is closer?", ["A. red", "B. blue"], "A"),
    (("L1", "Geometry", "Size"), "meanrelativeacc", "How tall is the box in meters?", [], "1.5"),
    (("L1", "Relation", "RelativeDirection"), "multichoiceeval", "Is red left of blue?", ["A. yes", "B. no"], "B"),
    (("L3", "Seq.Plan.", "Route"), "multichoiceeval", "Which way first?", ["A. left", "B. right", "C. ahead"], "C"),
]


def write_hand_bench(root, copies: int = 3) -> str:
    """``root/test.jsonl`` with ``copies`` records per HAND_RECORDS entry and a 56x56 image each."""
    import json
    from pathlib import Path

    from PIL import Image

    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (tags, metric, question, options, answer) in enumerate(HAND_RECORDS):
        for c in range(copies):
            img = f"images/{i}_{c}.png"
            Image.new("RGB", (56, 56), ((40 * i + 20 * c) % 255, 80, 160)).save(root / img)
            extra = {"metricfunc": metric, **{f"spatree{k}": t for k, t in enumerate(tags)}}
            rows.append({"id": f"hand-{i}-{c}", "question": f"{question} ({c})", "option": options,
                         "answer": answer, "question_type": "open" if metric == "meanrelativeacc" else "mcq",
                         "hint": "", "extra_info": json.dumps(extra), "image": [img], "video": [],
                         "video_info": [], "session_id": f"s{i}{c}"})
    path = root / "test.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)
