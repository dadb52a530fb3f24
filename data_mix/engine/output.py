"""Generating rows and writing them out, optionally with worker processes.

Workers only render and encode (each row has its own random stream, so results do not depend on
which process made them); the parent writes every file in row order, so the output is byte-identical
whatever the number of workers.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from .generate import build_one, plan
from .tasks import ALL_TASKS, COMPOSITES, TASKS, Opts
from .writers import bench_row, dump, dumps, llava_row, media_files, scene_row

FORMATS = ("llava", "bench", "both")
CHUNK = 16


def task_formats(task: str) -> tuple[str, ...]:
    """Formats a task can be written in: bench-only composites, LLaVA-only general tasks."""
    if task in COMPOSITES:
        return ("bench",)
    if task not in TASKS:
        raise KeyError(f"unknown engine task {task!r}; choose from {sorted(ALL_TASKS)}")
    return TASKS[task].formats


def resolve_formats(task: str, fmt: str) -> tuple[str, ...]:
    """The formats to write for ``--format`` (``both`` = whatever the task supports)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}, got {fmt!r}")
    can = task_formats(task)
    if fmt == "both":
        return can
    if fmt not in can:
        why = "general data has no SpatialTree-Bench form" if fmt == "bench" else "it is a bench-only task group"
        raise ValueError(f"task {task!r} cannot be written as {fmt}: {why} (it supports {', '.join(can)})")
    return (fmt,)


def default_workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


@contextlib.contextmanager
def worker_pool(workers: int):
    """A process pool (fork where available), or None for in-process generation."""
    if workers <= 1:
        yield None
        return
    methods = mp.get_all_start_methods()
    # fork is cheapest; a process that already runs torch (trainers, test sessions) has threads whose
    # locks a forked child could inherit held, so it gets a fork server instead.
    if "fork" in methods and "torch" not in sys.modules:
        ctx = mp.get_context("fork")
    else:
        ctx = mp.get_context("forkserver" if "forkserver" in methods else "spawn")
    pool = ctx.Pool(workers)
    try:
        yield pool
    finally:
        pool.terminate()
        pool.join()


class _Sink:
    """A JSONL file (one row a line) or a .json file (one JSON array), written as rows arrive."""

    def __init__(self, path: Path):
        self.path = path
        self.array = path.suffix == ".json"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = path.open("w", encoding="utf-8")
        self.n = 0
        if self.array:
            self.fh.write("[\n")

    def write(self, row: dict) -> None:
        if self.array:
            self.fh.write((",\n" if self.n else "") + dumps(row))
        else:
            dump(row, self.fh)
        self.n += 1

    def close(self) -> None:
        if self.array:
            self.fh.write("\n]\n")
        self.fh.close()


@dataclass(frozen=True)
class _Job:
    task: str
    seed: int
    stream: str | None
    opts: Opts
    id_prefix: str
    media_dir: str
    outputs: tuple[str, ...]


def _make_rows(job: _Job, chunk: list[tuple[str, int]]) -> list[tuple[dict[str, bytes], dict[str, dict]]]:
    """Render one chunk: per row, its media files (relative path -> PNG bytes) and its output rows."""
    out = []
    for sub, i in chunk:
        item = build_one(job.task, sub, i, job.seed, job.stream, job.opts)
        sid = f"{job.id_prefix}{item.task}-{i:06d}"
        files, images, video = media_files(item, sid, job.media_dir)
        rows = {}
        if "llava" in job.outputs:
            rows["llava"] = llava_row(item, sid, images, video)
        if "bench" in job.outputs:
            rows["bench"] = bench_row(item, sid, images)
        if "scenes" in job.outputs:
            rows["scenes"] = scene_row(item, sid)
        out.append((files, rows))
    return out


def _run_chunk(args):
    return _make_rows(*args)


def write_rows(task: str, n: int, seed: int, *, media_root: str | Path, media_dir: str,
               llava_path: str | Path | None = None, bench_path: str | Path | None = None,
               scenes_path: str | Path | None = None, stream: str | None = None, id_prefix: str = "",
               opts: Opts = Opts(), progress: bool = True, workers: int = 1, pool=None) -> int:
    """Generate ``task`` and write its rows; media go to ``media_root/media_dir``. Returns the row count.

    Row ids are ``{id_prefix}{task}-{index:06d}`` (the sub-task's name for composites). ``pool`` (from
    :func:`worker_pool`) is reused if given; otherwise ``workers`` > 1 starts one."""
    from tqdm import tqdm

    paths = {"llava": llava_path, "bench": bench_path, "scenes": scenes_path}
    paths = {k: Path(v) for k, v in paths.items() if v is not None}
    if "llava" not in paths and "bench" not in paths:
        raise ValueError("nothing to write: give llava_path and/or bench_path")
    media_root = Path(media_root)
    rows_plan = plan(task, n)
    job = _Job(task, seed, stream, opts, id_prefix, media_dir, tuple(paths))
    chunks = [(job, rows_plan[k:k + CHUNK]) for k in range(0, len(rows_plan), CHUNK)]
    with contextlib.ExitStack() as stack:
        if pool is None and workers > 1 and len(chunks) > 1:
            pool = stack.enter_context(worker_pool(workers))
        sinks = {k: _Sink(p) for k, p in paths.items()}
        for s in sinks.values():
            stack.callback(s.close)
        bar = stack.enter_context(tqdm(total=len(rows_plan), desc=f"engine {id_prefix}{task}", unit="row",
                                       disable=not progress, leave=False))
        results = pool.imap(_run_chunk, chunks) if pool is not None else map(_run_chunk, chunks)
        made_dirs: set[Path] = set()
        for chunk in results:
            for files, rows in chunk:
                for rel, data in files.items():
                    path = media_root / rel
                    if path.parent not in made_dirs:
                        path.parent.mkdir(parents=True, exist_ok=True)
                        made_dirs.add(path.parent)
                    path.write_bytes(data)
                for key, row in rows.items():
                    sinks[key].write(row)
                bar.update(1)
    return len(rows_plan)


def write_task(task: str, n: int, seed: int, out: str | Path, *, fmt: str = "both", opts: Opts = Opts(),
               scenes: bool = False, progress: bool = True, workers: int = 1) -> dict:
    """``python -m data_mix.engine --task ...``: rows in ``out/{task}_llava.jsonl`` and/or
    ``out/{task}_bench.jsonl``, images under ``out/images/{task}/`` (videos under ``out/videos/{task}/``),
    paths relative to ``out``. Returns a summary (task, rows, seed, files)."""
    formats = resolve_formats(task, fmt)
    out = Path(out)
    files = {f: out / f"{task}_{f}.jsonl" for f in formats}
    kind = "videos" if task == "general_vqa_video" else "images"
    rows = write_rows(task, n, seed, media_root=out, media_dir=f"{kind}/{task}", llava_path=files.get("llava"),
                      bench_path=files.get("bench"), scenes_path=out / f"{task}_scenes.jsonl" if scenes else None,
                      opts=opts, progress=progress, workers=workers)
    return {"task": task, "rows": rows, "seed": seed, "image_size": opts.size,
            "files": {f: str(p) for f, p in files.items()}, "media_root": str(out)}
