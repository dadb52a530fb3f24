"""One benchmark in its own process (clean memory, its own imports, a timeout the parent enforces).

    python -m bench.worker NAME --out result.json --workdir DIR [--quick] [--repeats N] [--warmup N] [--log FILE]
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
import traceback
from pathlib import Path

from bench import BENCHMARKS
from bench.harness import Context


class Skip(Exception):
    """A benchmark cannot run here (a missing piece); the message says what and why."""


_progress = sys.stderr  # where progress lines go; the rest of the worker's output goes to its log file


def log(msg: str) -> None:
    print(f"[bench] {msg}", file=_progress, flush=True)


def quiet_into(path: str) -> None:
    """Send this process's stdout and stderr (and its children's) to ``path``; keep progress on the terminal."""
    import os

    global _progress
    _progress = os.fdopen(os.dup(2), "w", buffering=1)
    fh = open(path, "w")
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fh.fileno(), 1)
    os.dup2(fh.fileno(), 2)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.worker")
    p.add_argument("name", choices=sorted(BENCHMARKS))
    p.add_argument("--out", required=True)
    p.add_argument("--workdir", required=True)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--repeats", type=int, required=True)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--log", default=None, help="file for everything but progress lines (default: the terminal)")
    args = p.parse_args(argv)
    if args.log:
        quiet_into(args.log)

    import torch

    torch.set_num_threads(1)  # one core per process: the tiny models are fastest so, and runs are comparable
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=args.quick, repeats=args.repeats, warmup=args.warmup, workdir=workdir,
                  log=lambda m: log(f"{args.name}: {m}"))
    start = time.perf_counter()
    try:
        module = importlib.import_module(BENCHMARKS[args.name])
        figures = module.run(ctx)
        result = {"status": "ok", "method": getattr(module, "METHOD", 1), "figures": [f.to_dict() for f in figures]}
    except Skip as exc:
        log(f"{args.name}: SKIPPED: {exc}")
        result = {"status": "skipped", "reason": str(exc), "figures": []}
    except Exception as exc:  # noqa: BLE001 - reported in results.json and by the exit code
        traceback.print_exc()
        result = {"status": "error", "reason": f"{type(exc).__name__}: {exc}", "figures": []}
    result["seconds"] = round(time.perf_counter() - start, 1)
    Path(args.out).write_text(json.dumps(result))
    return 0 if result["status"] != "error" else 1


if __name__ == "__main__":
    sys.exit(main())
