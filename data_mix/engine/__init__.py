"""The synthetic spatial data engine: rendered 3-D scenes with exact answers, written as LLaVA SFT
rows and SpatialTree-Bench records (docs/ENGINE.md).

    python -m data_mix.engine --task distance --n 100 --seed 0 --out DIR
    python -m data_mix.engine --standin DIR --scale small

Python API::

    from data_mix.engine import generate, write_task, make_standin, Opts, TASKS
    for index, item in generate("distance", 10, seed=0):   # Item: images (numpy), question, answer, scene
        ...
"""

from __future__ import annotations

from .generate import build_one, generate, plan, sample_rng
from .output import FORMATS, default_workers, resolve_formats, task_formats, worker_pool, write_rows, write_task
from .standin import make_standin
from .tasks import ALL_TASKS, BENCH_TASKS, COMPOSITES, LEVEL_TASKS, TASKS, Item, Opts
from .writers import bench_row, human_prompt, llava_row, spatree_tags

__all__ = [
    "ALL_TASKS", "BENCH_TASKS", "COMPOSITES", "FORMATS", "LEVEL_TASKS", "TASKS", "Item", "Opts", "bench_row",
    "build_one", "default_workers", "generate", "human_prompt", "llava_row", "make_standin", "plan",
    "resolve_formats", "sample_rng", "spatree_tags", "task_formats", "worker_pool", "write_rows", "write_task",
]
