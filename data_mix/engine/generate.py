"""Deterministic generation: every sample has its own random stream, keyed by (seed, stream, index).

The stream is a name (the task, or the registry source the data is for), so two sources made with
the same seed never share a scene, and sample i does not depend on how many samples come before it.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from .tasks import COMPOSITES, TASKS, Item, Opts


def stream_id(name: str) -> int:
    """A stable 32-bit number for a stream name (not Python's salted hash)."""
    return zlib.crc32(name.encode("utf-8"))


def sample_rng(seed: int, stream: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), stream_id(stream), int(index)]))


def plan(task: str, n: int) -> list[tuple[str, int]]:
    """(sub-task, index within the sub-task) for every row of ``task``, in output order.

    A plain task yields n rows. ``bench_all`` yields n rows per bench task; ``bench_l1`` ... ``bench_l4``
    yield n rows in total, round-robin over the level's tasks. Composite rows are interleaved so that
    any prefix of the file covers every task."""
    if task in TASKS:
        return [(task, i) for i in range(n)]
    if task not in COMPOSITES:
        raise KeyError(f"unknown engine task {task!r}; choose from {sorted([*TASKS, *COMPOSITES])}")
    subs = COMPOSITES[task]
    total = n * len(subs) if task == "bench_all" else n
    return [(subs[j % len(subs)], j // len(subs)) for j in range(total)]


def build_one(task: str, sub: str, index: int, seed: int, stream: str | None = None, opts: Opts = Opts()) -> Item:
    """Row ``index`` of sub-task ``sub`` of ``task`` (``sub == task`` for a plain task)."""
    spec = TASKS[sub]
    if opts.kinds is not None and sub != task:  # a composite keeps only the kinds each sub-task has
        mine = tuple(k for k in opts.kinds if k in spec.kinds)
        opts = replace(opts, kinds=mine or None)
    base = stream or task
    return spec.build(sample_rng(seed, f"{base}/{sub}" if task in COMPOSITES else base, index), opts)


def generate(task: str, n: int, seed: int = 0, *, stream: str | None = None,
             opts: Opts = Opts()) -> Iterator[tuple[int, Item]]:
    """Yield (index within its sub-task, item) for the rows of ``task``.

    ``stream`` names the random stream (default: the task name); composite tasks use
    ``"{stream}/{sub-task}"`` for each sub-task."""
    for sub, i in plan(task, n):
        yield i, build_one(task, sub, i, seed, stream, opts)
