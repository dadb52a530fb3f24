"""``python -m bench.gpu_check`` (``make gpu-check``): run the GPU checks, print a table, write bench/gpu_results.json.

    python -m bench.gpu_check                              # everything, the embedded tiny model, all visible GPUs
    python -m bench.gpu_check --only packing zero3
    python -m bench.gpu_check --model Qwen/Qwen2.5-VL-7B-Instruct --only throughput   # figures next to the anchors
    python -m bench.gpu_check --device cpu --allow-cpu --out /tmp/smoke.json         # tests: CPU smoke mode

Without a GPU: one line saying so (with the model's family, read from its config.json, and the checks that would
run for it), exit 0, nothing run or written. A ``--model`` whose ``model_type`` no family serves: one line, exit 2.
Exit 1 when a check failed or errored.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from bench.gpu_check import CHECKS
from bench.gpu_check.record import CheckResult, Settings

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "bench" / "gpu_results.json"
GROUP_NAMES = {"packing": ["packing"], "precision": ["bf16_loss", "bf16_update"], "rollout": ["rollout"],
               "zero3": ["zero3", "zero3_packed"], "throughput": ["throughput_sft", "throughput_grpo"],
               "memory": ["memory_grpo"]}


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", nargs="+", choices=CHECKS, metavar="CHECK", help=f"run only these ({', '.join(CHECKS)})")
    p.add_argument("--model", default="tiny-qwen2.5-vl", help="checkpoint for packing, precision, rollout and "
                                                              "throughput (default: the embedded tiny model)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="results file (default bench/gpu_results.json)")
    p.add_argument("--steps", type=int, default=4, help="timed optimizer steps per throughput run (default 4)")
    p.add_argument("--peak-tflops", type=float, default=None, help="peak dense bf16 TFLOP/s per GPU for MFU (for "
                                                                     "a GPU model the built-in table does not know)")
    p.add_argument("--timeout", type=float, default=600, help="seconds a child process may take (default 600)")
    p.add_argument("--logs", type=Path, default=REPO / "runs" / "gpu_check", help="child process logs")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder (corpus, child runs)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda", help=argparse.SUPPRESS)
    p.add_argument("--allow-cpu", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.device == "cpu":
        if not args.allow_cpu:
            p.error("--device cpu is the tests' smoke mode: add --allow-cpu")
        if args.out.resolve() == DEFAULT_OUT.resolve():
            p.error(f"CPU smoke results are not GPU results: give --out somewhere other than {DEFAULT_OUT}")
    if args.steps < 1:
        p.error("--steps must be >= 1")
    return args


def no_gpu() -> str | None:
    """Why the GPU checks cannot run here, or None. Imports torch and nothing else."""
    import torch

    if not torch.cuda.is_available():
        return "no CUDA GPU visible to torch (torch.cuda.is_available() is False)"
    return None


def family_plan(model: str, groups: list[str]) -> tuple[str, str]:
    """(family name, what would run for it) for ``--model``: read from its config.json only (no weights). Raises
    train.models.UnsupportedFamily for a checkpoint no family serves."""
    from train.models import family_for_checkpoint
    from train.tiny import TINY_NAME

    family = family_for_checkpoint(model)
    said, skipped = [], ""
    for group in groups:
        if group == "packing" and family.packing_refusal:
            skipped = "; packing would be skipped (the family refuses packing)"
        elif group == "zero3":
            said.append(f"zero3 (on {TINY_NAME})")
        else:
            said.append(group)
    return family.name, (", ".join(said) or "nothing") + skipped


def runner(group: str, settings: Settings, peak):
    """The check group's ``run`` as a function returning its results."""
    import importlib

    module = importlib.import_module(f"bench.gpu_check.c_{group}")
    if group == "throughput":
        return lambda: module.run(settings, peak)
    return lambda: (lambda res: res if isinstance(res, list) else [res])(module.run(settings))


def run_checks(settings: Settings, groups: list[str], peak) -> dict[str, CheckResult]:
    checks: dict[str, CheckResult] = {}
    for group in groups:
        start = time.perf_counter()
        print(f"[gpu-check] {group} ...", file=sys.stderr, flush=True)
        try:
            results = runner(group, settings, peak)()
        except Exception as exc:  # noqa: BLE001 - recorded as the check's error, the other checks still run
            import traceback

            traceback.print_exc()
            results = [CheckResult(name, f"{group} (did not finish)", status="error",
                                   reason=f"{type(exc).__name__}: {exc}".splitlines()[0])
                       for name in GROUP_NAMES[group]]
        seconds = round(time.perf_counter() - start, 1)
        for res in results:
            res.seconds = seconds
            checks[res.name] = res
            print(f"[gpu-check] {res.name}: {res.status}" + (f" ({res.reason})" if res.reason else ""),
                  file=sys.stderr, flush=True)
    return checks


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    from train.models import UnsupportedFamily

    try:  # the model's family first: an unsupported checkpoint is a one-line error with or without a GPU
        family, plan = family_plan(args.model, list(args.only or CHECKS))
    except UnsupportedFamily as exc:
        print(f"gpu-check: error: --model {exc}", file=sys.stderr)
        return 2
    if args.device == "cuda":
        reason = no_gpu()
        if reason:
            shown = args.out.resolve().relative_to(REPO) if args.out.resolve().is_relative_to(REPO) else args.out
            print(f"gpu-check: {reason}; nothing was run and {shown} was not written (model {args.model}, family "
                  f"{family}: would run {plan}).")
            return 0
    import datetime as dt
    import signal

    import torch

    from bench.gpu_check import anchors, flops
    from bench.gpu_check.record import SCHEMA, remove, scratch_dir, summary_counts, table
    from bench.machine import describe
    from bench.report import write_results

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # unwind: child processes are stopped on the way out
    smoke = args.device == "cpu"
    if smoke:
        torch.set_num_threads(1)
    gpus = 2 if smoke else torch.cuda.device_count()
    names = [] if smoke else [torch.cuda.get_device_name(i) for i in range(gpus)]
    peak = (flops.Peak(flops.CPU_PLACEHOLDER_TFLOPS, "CPU smoke placeholder: NOT a GPU peak; MFU meaningless", None)
            if smoke else flops.peak_for(names[0], args.peak_tflops))
    settings = Settings(device=args.device, model=args.model, out=args.out, workdir=scratch_dir(), gpus=gpus,
                        peak_tflops=args.peak_tflops, steps=args.steps, timeout=args.timeout, log_dir=args.logs)
    started, start = dt.datetime.now().isoformat(timespec="seconds"), time.perf_counter()
    try:
        checks = run_checks(settings, args.only or list(CHECKS), peak)
    finally:
        if args.keep:
            print(f"[gpu-check] scratch kept: {settings.workdir}", file=sys.stderr)
        else:
            remove(settings.workdir)
    machine = describe(REPO, threads=torch.get_num_threads())
    machine.update({"gpus": names, "gpu_count": len(names),
                    "peak_bf16": {"tflops": peak.tflops, "source": peak.source, "matched": peak.matched}})
    results = {"schema": SCHEMA, "mode": "cpu-smoke" if smoke else "gpu", "started": started,
               "finished": dt.datetime.now().isoformat(timespec="seconds"),
               "seconds": round(time.perf_counter() - start, 1), "command": ["python", "-m", "bench.gpu_check",
                                                                              *(argv if argv is not None else sys.argv[1:])],
               "machine": machine, "model": args.model, "checks": {n: c.to_dict() for n, c in checks.items()},
               "anchors": anchors.ANCHORS, "flops": flops.FORMULA, "summary": summary_counts(checks)}
    write_results(results, args.out)
    print(table(checks, results["mode"]))
    print(f"wrote {args.out}")
    return 1 if any(c.status in ("fail", "error") for c in checks.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
