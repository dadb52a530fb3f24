"""``python -m bench [--only NAME ...] [--quick] [--repeats N]``: run the benchmarks, write
bench/results.json and the results block of docs/PERFORMANCE.md.

Each benchmark runs in its own process (one torch thread), with warm-up and interleaved repeats of
ours and its baseline. Exit code 1 when a benchmark failed (its error is in results.json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import BENCHMARKS, guards
from bench.machine import describe, load_average
from bench.report import update_doc, write_results

REPO = Path(__file__).resolve().parents[1]


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", metavar="NAME", help=f"run only these ({', '.join(BENCHMARKS)})")
    p.add_argument("--quick", action="store_true", help="smoke-run sizes (about two minutes for everything)")
    p.add_argument("--repeats", type=int, default=None, help="measured repeats per side (default 5, --quick 2)")
    p.add_argument("--warmup", type=int, default=None, help="discarded calls per side before measuring (default 1, "
                                                            "--quick 0)")
    p.add_argument("--out", default=str(REPO / "bench" / "results.json"), help="results file")
    p.add_argument("--doc", default=str(REPO / "docs" / "PERFORMANCE.md"), help="document whose results block is updated")
    p.add_argument("--no-doc", action="store_true", help="do not touch the document")
    p.add_argument("--logs", default=str(REPO / "runs" / "bench"), help="folder for each benchmark's full output")
    p.add_argument("--timeout", type=float, default=900, help="seconds one benchmark may take (default 900)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--compare-to", metavar="FILE", help="an earlier run's results.json: report every ratio against "
                                                         "it and flag differences over 15%%")
    p.add_argument("--reference", metavar="FILE", help="the run baseline medians are checked against for drift "
                                                        "(default: bench/results.json as committed at HEAD)")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when a guard flags something (a failed known-answer check, baseline drift, a ratio "
                        "off --compare-to)")
    args = p.parse_args(argv)
    if args.only:
        unknown = [n for n in args.only if n not in BENCHMARKS]
        if unknown:
            p.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.warmup is None:
        args.warmup = 0 if args.quick else 1
    if args.repeats < 1 or args.warmup < 0:
        p.error("--repeats must be >= 1 and --warmup >= 0")
    return args


def run_one(name: str, args, scratch: Path) -> dict:
    out = scratch / f"{name}.json"
    log = Path(args.logs) / f"{name}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "bench.worker", name, "--out", str(out), "--workdir", str(scratch / name),
           "--log", str(log),
           "--repeats", str(args.repeats), "--warmup", str(args.warmup)] + (["--quick"] if args.quick else [])
    env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1",
               WANDB_MODE=os.environ.get("WANDB_MODE", "offline"), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               TRANSFORMERS_VERBOSITY=os.environ.get("TRANSFORMERS_VERBOSITY", "error"))
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=REPO, env=env, timeout=args.timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        return {"status": "error", "reason": f"timed out after {args.timeout:.0f} s", "figures": [],
                "seconds": round(time.perf_counter() - start, 1)}
    if out.is_file():
        result = json.loads(out.read_text())
        if result["status"] == "error":
            print(f"[bench] {name} failed; the end of {log}:\n{log.read_text()[-3000:]}", file=sys.stderr, flush=True)
        return result
    print(f"[bench] {name} failed; the end of {log}:\n{log.read_text()[-3000:] if log.exists() else ''}",
          file=sys.stderr, flush=True)
    return {"status": "error", "reason": f"the worker exited with {code} and wrote no result", "figures": [],
            "seconds": round(time.perf_counter() - start, 1)}


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.list:
        for name, module in BENCHMARKS.items():
            print(f"{name:10s} {module}")
        return 0
    names = args.only or list(BENCHMARKS)
    try:  # read both before anything runs (and before results.json is overwritten)
        earlier = guards.load_results(Path(args.compare_to)) if args.compare_to else None
        if args.reference:
            reference, ref_source = guards.load_results(Path(args.reference)), args.reference
        else:
            reference, ref_source = guards.committed_results(REPO)
    except ValueError as exc:
        print(f"python -m bench: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    results = {"started": dt.datetime.now().isoformat(timespec="seconds"),
               "config": {"quick": args.quick, "repeats": args.repeats, "warmup": args.warmup, "only": names},
               "machine": describe(REPO, threads=1), "benchmarks": {}}
    scratch = Path(tempfile.mkdtemp(prefix="spatialtree-bench-"))
    try:
        for name in names:
            print(f"[bench] === {name} ===", file=sys.stderr, flush=True)
            res = run_one(name, args, scratch)
            results["benchmarks"][name] = res
            status = res["status"] + (f" ({res.get('reason')})" if res["status"] != "ok" else "")
            print(f"[bench] {name}: {status}, {len(res['figures'])} figure(s), {res['seconds']} s",
                  file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    results["machine"]["load_average_at_end"] = load_average()
    results["finished"] = dt.datetime.now().isoformat(timespec="seconds")
    results["seconds"] = round(time.perf_counter() - start, 1)
    results["guards"] = guards.guard(results, reference, ref_source, earlier, args.compare_to or "")
    write_results(results, Path(args.out))
    if not args.no_doc:
        update_doc(results, Path(args.doc))
    for name, res in results["benchmarks"].items():
        for fig in res["figures"]:
            r = fig["ratio"]
            print(f"{name:8s} {fig['name']:28s} ratio {r['median']:.3g} "
                  f"[{r['spread']['q1']:.3g}-{r['spread']['q3']:.3g}]  ours {fig['ours']['median']:.4g} {fig['unit']}",
                  flush=True)
    for line in guards.lines(results):
        print(f"[guard] {line}", flush=True)
    print(f"wrote {args.out}" + ("" if args.no_doc else f" and {args.doc}"), flush=True)
    if any(r["status"] == "error" for r in results["benchmarks"].values()):
        return 1
    return 1 if args.strict and results["guards"]["flagged"] else 0


if __name__ == "__main__":
    sys.exit(main())
