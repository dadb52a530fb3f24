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
