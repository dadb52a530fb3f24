"""Command line of the synthetic data engine (docs/ENGINE.md); ``python -m data_mix.engine`` is an alias.

    python launch/engine.py --task distance --n 200 --seed 0 --out DIR [--image-size 56] [--format both]
    python launch/engine.py --standin DIR --scale small [--seed 0] [--registry PATH]
    python launch/engine.py --list
"""

from __future__ import annotations

import argparse
import sys
import time

from .output import FORMATS, default_workers, write_task
from .standin import SCALES, StandinError, make_standin
from .tasks import ALL_TASKS, COMPOSITES, TASKS, Opts


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launch/engine.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--task", choices=ALL_TASKS, help="generate one task (or a bench_* group)")
    mode.add_argument("--standin", metavar="DIR", help="fill DIR with stand-ins for every registry source")
    mode.add_argument("--list", action="store_true", help="list the tasks, their variants and formats")
    p.add_argument("--n", type=int, help="rows (bench_all: rows per task; bench_l1..l4: rows in total)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", help="output directory for --task")
    p.add_argument("--format", default="both", choices=FORMATS, help="llava, bench or both (default: both)")
    p.add_argument("--kinds", help="comma-separated question variants to keep (see --list)")
    p.add_argument("--image-size", type=int, default=56, help="image width = height in pixels (default 56)")
    p.add_argument("--supersample", type=int, default=1, help="rays per pixel per axis (2 = antialiased)")
    p.add_argument("--option-order", choices=("shuffle", "fixed"), default="shuffle",
                   help="MCQ options in a seeded random order (default) or in a fixed canonical order")
    p.add_argument("--scenes", action="store_true", help="also write {task}_scenes.jsonl with the geometry")
    p.add_argument("--scale", choices=SCALES, default="small", help="stand-in size (registry standin.small/full)")
    p.add_argument("--registry", help="registry YAML (default recipes/data/registry.yaml)")
    p.add_argument("--workers", type=int, default=default_workers(),
                   help="render processes (default: %(default)s); the output does not depend on it")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def _list() -> None:
    for name, spec in TASKS.items():
        leaf = spec.leaf or "general (no tag)"
        print(f"{name:20s} {'/'.join(spec.formats):12s} {leaf:20s} kinds: {', '.join(spec.kinds)}")
        print(f"{'':20s} {spec.description}")
    for name, subs in COMPOSITES.items():
        print(f"{name:20s} {'bench':12s} {'':20s} tasks: {', '.join(subs)}")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.list:
        _list()
        return 0
    if args.image_size < 28:
        print("error: --image-size must be at least 28 (one 2x2 group of 14-pixel patches)", file=sys.stderr)
        return 2
    if args.supersample < 1:
        print("error: --supersample must be >= 1", file=sys.stderr)
        return 2
    kinds = tuple(k.strip() for k in args.kinds.split(",") if k.strip()) if args.kinds else None
    opts = Opts(size=args.image_size, kinds=kinds, supersample=args.supersample, option_order=args.option_order)
    t0 = time.perf_counter()
    try:
        if args.standin:
            man = make_standin(args.standin, scale=args.scale, seed=args.seed, registry=args.registry, opts=opts,
                               progress=not args.quiet, workers=args.workers)
            dt = time.perf_counter() - t0
            print(f"stand-ins: {len(man['sources'])} sources, {man['total_rows']} rows in {dt:.1f} s -> "
                  f"{args.standin} (see STANDIN_README.md, standin_manifest.json)")
            return 0
        if args.n is None or args.out is None:
            print("error: --task needs --n and --out", file=sys.stderr)
            return 2
        if args.n < 0:
            print("error: --n must be >= 0", file=sys.stderr)
            return 2
        if kinds and args.task in TASKS:
            bad = [k for k in kinds if k not in TASKS[args.task].kinds]
            if bad:
                print(f"error: unknown kind(s) {bad} for {args.task}; it has {list(TASKS[args.task].kinds)}",
                      file=sys.stderr)
                return 2
        s = write_task(args.task, args.n, args.seed, args.out, fmt=args.format, opts=opts, scenes=args.scenes,
                       progress=not args.quiet, workers=args.workers)
    except (StandinError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    dt = time.perf_counter() - t0
    files = ", ".join(s["files"].values())
    print(f"{s['task']}: {s['rows']} rows in {dt:.1f} s ({s['rows'] / max(dt, 1e-9):.0f}/s) -> {files}")
    return 0
