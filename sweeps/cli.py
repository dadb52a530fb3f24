"""``python launch/sweep.py SWEEP.yaml [--dry-run | --submit | --local | --status] [--set key=value ...]``."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from sweeps.loader import load_sweep
from sweeps.spec import SweepError
from sweeps.status import format_status, sweep_status

EPILOG = """examples:
  python launch/sweep.py recipes/sweeps/table2_sft.yaml --dry-run
  python launch/sweep.py recipes/sweeps/table2_sft.yaml --submit --set slurm.partition=gpu --set slurm.account=me
  python launch/sweep.py recipes/sweeps/table2_sft.yaml --status
  python launch/sweep.py recipes/sweeps/quickstart.yaml --local --set data.root=STANDIN
  python launch/report.py runs/sweeps/table2_sft
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="launch/sweep.py", description="Run a sweep of recipes as Slurm job arrays.",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("sweep", nargs="?", help="sweep YAML (e.g. recipes/sweeps/table2_sft.yaml); optional with "
                                           "--status --sweep-dir")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--dry-run", action="store_true", help="print the sbatch script(s) and submit nothing (default)")
    mode.add_argument("--submit", action="store_true", help="submit with sbatch; job ids go to SWEEP_DIR/sweep.json")
    mode.add_argument("--local", action="store_true", help="run the runs one after another here, without Slurm")
    mode.add_argument("--status", action="store_true", help="each run's state: pending, running, done, failed")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override for every run: a recipe key (data.root=DIR) or slurm.KEY (slurm.partition=gpu)")
    p.add_argument("--sweep-dir", type=Path, help="where runs and bookkeeping go (default runs/sweeps/NAME)")
    p.add_argument("--wait", action="store_true", help="with --submit: poll until every run is done or failed")
    p.add_argument("--poll", type=float, default=10.0, help="seconds between polls with --wait (default 10)")
    p.add_argument("--timeout", type=float, default=0, help="with --wait: give up after this many seconds (0 = never)")
    p.add_argument("--procs", type=int, default=1, help="with --local: processes per run (torchrun --standalone)")
    p.add_argument("--no-validate", action="store_true", help="do not load each run's recipe before submitting")
    return p


def wait_for(sweep_dir: Path, poll: float, timeout: float, echo=print) -> int:
    """Poll until no run is pending or running; 0 when all are done."""
    start = time.monotonic()
    last = None
    while True:
        statuses = sweep_status(sweep_dir)
        summary = {s.name: s.state for s in statuses}
        if summary != last:
            echo(time.strftime("%H:%M:%S ") + ", ".join(f"{n}={s}" for n, s in summary.items()))
            last = summary
        if not any(s.state in ("pending", "running") for s in statuses):
            echo(format_status(sweep_status(sweep_dir)))
            return 0 if all(s.state == "done" for s in statuses) else 1
        if timeout and time.monotonic() - start > timeout:
            echo(f"timed out after {timeout:.0f} s\n" + format_status(statuses))
            return 1
        time.sleep(poll)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.status and args.sweep is None:
            if args.sweep_dir is None:
                raise SweepError("--status needs the sweep YAML or --sweep-dir")
            print(format_status(sweep_status(args.sweep_dir)))
            return 0
        if args.sweep is None:
            raise SweepError("give the sweep YAML, e.g. recipes/sweeps/table2_sft.yaml")
        sweep = load_sweep(args.sweep, args.set, validate_recipes=not (args.no_validate or args.status))
        sweep_dir = (args.sweep_dir or Path("runs") / "sweeps" / sweep.name).resolve()
        if args.status:
            print(format_status(sweep_status(sweep_dir)))
            return 0
        if args.local:
            from sweeps.local import run_local

            return run_local(sweep, sweep_dir, args.set, procs=args.procs)
        from sweeps.submit import submit

        submit(sweep, sweep_dir, args.set, dry_run=not args.submit)
        if args.submit and args.wait:
            return wait_for(sweep_dir, args.poll, args.timeout)
        return 0
    except (SweepError, FileNotFoundError, ValueError) as exc:
        print(f"launch/sweep.py: error: {exc}", file=sys.stderr)
        return 2
