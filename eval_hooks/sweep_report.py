"""A sweep's report on disk, and ``launch/report.py``'s command line.

The table (eval_hooks/report.py: collect the runs, markdown and CSV) and the figures (eval_hooks/figures.py)
are written side by side under SWEEP_DIR/report/, and the HTML page SWEEP_DIR/report.html (eval_hooks/html). This module imports both; neither imports it, and figures
imports only the table's data model: the imports run one way.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from eval_hooks.report import Report, collect, reweight, to_csv, to_markdown
from rewards import taxonomy as tx


def write_report(report: Report, out_dir: Path, figures: bool = True) -> dict[str, Path]:
    """table.md, table.csv and (with ``figures``) the PNGs under ``out_dir``; name -> path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"table.md": out_dir / "table.md", "table.csv": out_dir / "table.csv"}
    written["table.md"].write_text(to_markdown(report))
    written["table.csv"].write_text(to_csv(report))
    if figures:
        from eval_hooks.figures import write_figures  # matplotlib only when figures are drawn

        written.update(write_figures(report, out_dir))
    return written


def write_pages(report: Report, sweep_dir: Path, figures_dir: Path, run_page: Callable[[Path], object] | None) -> Path:
    """Each row's run page (``run_page(RUN_DIR)``, when given), then SWEEP_DIR/report.html linking to them."""
    from eval_hooks.html.sweep_page import run_dirs_of, write_sweep_page

    dirs = run_dirs_of(report)
    if run_page is not None:
        for run_dir in dirs.values():
            try:
                run_page(run_dir)
            except (OSError, ValueError) as exc:
                print(f"launch/report.py: warning: run page of {run_dir} not written: {exc}", file=sys.stderr)
    return write_sweep_page(report, sweep_dir, figures_dir, dirs)


def main(argv: Sequence[str] | None = None, run_page: Callable[[Path], object] | None = None) -> int:
    """``run_page``: writes one run's page (launch/report.py passes train.report_page.write_report)."""
    p = argparse.ArgumentParser(prog="launch/report.py", description="A sweep's results as the paper's tables "
                                "(markdown + CSV), figures (PNG) and SWEEP_DIR/report.html. Given a run directory "
                                "instead (launch/report.py RUN_DIR [--out PAGE]): that run's page, RUN_DIR/report.html.")
    p.add_argument("sweep_dir", type=Path, help="the sweep directory (SWEEP_DIR with sweep.json and runs/)")
    p.add_argument("--out", type=Path, help="output folder (default SWEEP_DIR/report)")
    p.add_argument("--baseline", help="compare every run with this one (default: sweep.json's baseline/compare_to)")
    p.add_argument("--threshold", type=float, default=1.0, help="points (x100) for gain/drop (default 1.0)")
    p.add_argument("--weights", choices=sorted(tx.WEIGHTINGS), help="re-aggregate every row with this weighting "
                   "(default: as each summary was written)")
    p.add_argument("--no-figures", action="store_true", help="tables only")
    p.add_argument("--strict", action="store_true", help="exit 1 when a run is unfinished or has no summary")
    args = p.parse_args(argv)
    try:
        report = collect(args.sweep_dir, args.baseline, args.threshold)
    except (FileNotFoundError, ValueError) as exc:
        print(f"launch/report.py: error: {exc}", file=sys.stderr)
        return 2
    if not report.rows:
        print(f"launch/report.py: error: no run of {args.sweep_dir} has a summary.json yet "
              f"(runs: {', '.join(report.missing)})", file=sys.stderr)
        return 1
    if args.weights:
        reweight(report, args.weights)
    written = write_report(report, args.out or args.sweep_dir / "report", figures=not args.no_figures)
    written["report.html"] = write_pages(report, args.sweep_dir, args.out or args.sweep_dir / "report", run_page)
    print(to_markdown(report))
    for path in written.values():
        print(f"wrote {path}")
    unfinished = report.missing + [r.name for r in report.rows if not r.finished]
    return 1 if args.strict and unfinished else 0
