"""The engine's task table: builder, SpatialTree leaf, output formats and question variants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import general, multiview, perception, planning
from .base import OPTION_ORDERS, Item, Opts


@dataclass(frozen=True)
class TaskSpec:
    name: str
    build: Callable[[np.random.Generator, Opts], Item]
    leaf: str | None
    """SpatialTree leaf as the taxonomy spells it; None for general data."""
    kinds: tuple[str, ...]
    """Question variants (``--kinds`` picks among them)."""
    description: str

    @property
    def formats(self) -> tuple[str, ...]:
        return ("llava", "bench") if self.leaf else ("llava",)


TASKS: dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec("distance", perception.distance, "Distance", tuple(perception.DISTANCE_KINDS),
             "which of two objects is closer / farther (MCQ); metric depth of one object (open, MRA)"),
    TaskSpec("size", perception.size, "Size", tuple(perception.SIZE_KINDS),
             "which object is larger in 3-D (MCQ); longest dimension in cm (open, MRA)"),
    TaskSpec("correspondence", multiview.correspondence, "Correspondence", ("correspondence",),
             "which of four marked points in view 2 is the point marked in view 1 (MCQ)"),
    TaskSpec("ego_motion", multiview.ego_motion, "Ego", ("ego_motion",),
             "camera moved left / right / forward / backward between two views (MCQ)"),
    TaskSpec("gravity", perception.gravity, "Gravity", ("gravity",),
             "camera roll, pitch and vertical FoV in degrees (JSON, gravityeval)"),
    TaskSpec("relative_direction", perception.relative_direction, "Relative Direction",
             tuple(perception.DIRECTION_KINDS), "left / right or above / below between two objects (MCQ)"),
    TaskSpec("memory", multiview.memory, "Memory Retrieval", ("memory",),
             "which object of view 1 is gone in view 2 (MCQ)"),
    TaskSpec("route", planning.route, "Route", ("route",),
             "sequence of turns walking between objects on the ground plane (MCQ)"),
    TaskSpec("navigation", planning.navigation, "Agentic Navigation", ("navigation",),
             "action sequence from a start view to a goal view (JSON, agenticnaveval)"),
    TaskSpec("general_vqa", general.general_vqa, None, tuple(general.SINGLE_KINDS),
             "colours, shapes, counts, captions on one image (LLaVA only)"),
    TaskSpec("general_vqa_multi", general.general_vqa_multi, None, tuple(general.MULTI_KINDS),
             "questions over 2-3 images or views (LLaVA only)"),
    TaskSpec("general_vqa_video", general.general_vqa_video, None, tuple(general.VIDEO_KINDS),
             f"questions about a {general.VIDEO_FRAMES}-frame clip (LLaVA only)"),
)}

BENCH_TASKS = tuple(name for name, spec in TASKS.items() if spec.leaf)
LEVEL_TASKS = {
    "bench_l1": ("distance", "size", "correspondence", "ego_motion", "gravity", "relative_direction"),
    "bench_l2": ("memory",),
    "bench_l3": ("route",),
    "bench_l4": ("navigation",),
}
COMPOSITES: dict[str, tuple[str, ...]] = {"bench_all": BENCH_TASKS, **LEVEL_TASKS}
"""Bench-only task groups. ``bench_all``: n records per task; ``bench_lN``: n records in total,
spread round-robin over the level's tasks."""

ALL_TASKS = (*TASKS, *COMPOSITES)

__all__ = ["ALL_TASKS", "BENCH_TASKS", "COMPOSITES", "Item", "LEVEL_TASKS", "OPTION_ORDERS", "Opts", "TASKS",
           "TaskSpec"]
