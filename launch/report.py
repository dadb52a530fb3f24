#!/usr/bin/env python
"""Pages and tables of results.

    python launch/report.py RUN_DIR                      # RUN_DIR/report.html (a run still running or killed too)
    python launch/report.py SWEEP_DIR [--baseline NAME]  # the paper's tables and figures, SWEEP_DIR/report.html
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/report.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

RUN_MARKERS = ("metrics.jsonl", "run_info.json", "recipe.yaml", "eval", "train_summary.json")


def is_run_dir(path: Path) -> bool:
    """A run directory (what a launcher writes) and not a sweep (sweep.json or runs/)."""
    return path.is_dir() and not (path / "sweep.json").exists() and not (path / "runs").is_dir() \
        and any((path / m).exists() for m in RUN_MARKERS)


def run_main(argv: list[str]) -> int:
    import argparse

    p = argparse.ArgumentParser(prog="launch/report.py", description="One run's page: RUN_DIR/report.html "
                                "(curves, hierarchy, evaluation samples, GRPO rollouts); opens from disk.")
    p.add_argument("run_dir", type=Path)
    p.add_argument("--out", type=Path, help="where to write the page (default RUN_DIR/report.html)")
    args = p.parse_args(argv)
    from train.report_page import write_report

    try:
        path = write_report(args.run_dir, args.out)
    except (OSError, ValueError) as exc:
        print(f"launch/report.py: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def main(argv: list[str]) -> int:
    first = next((a for a in argv if not a.startswith("-")), None)
    if first is not None and is_run_dir(Path(first)):
        return run_main(argv)
    if first is not None and not (Path(first) / "sweep.json").is_file() and not (Path(first) / "runs").is_dir():
        print(f"launch/report.py: error: {first} is neither a run directory (with {', '.join(RUN_MARKERS)}) nor a "
              "sweep directory (with sweep.json or runs/)", file=sys.stderr)
        return 2
    from eval_hooks.sweep_report import main as sweep_main
    from train.report_page import write_report

    return sweep_main(argv, run_page=write_report)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
