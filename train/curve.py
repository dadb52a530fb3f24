"""Print a run's learning curve and its held-out accuracy before / during / after training.

    python launch/curve.py RUN_DIR [--width 40]

Reads ``RUN_DIR/metrics.jsonl`` (train/loss per log step, bench/overall per evaluation).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from eval_hooks import layout


def read_metrics(run_dir: str | Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, train loss) and (step, bench/overall) pairs from metrics.jsonl."""
    losses, bench = [], []
    path = Path(run_dir) / layout.METRICS_JSONL
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics (is {run_dir} a run directory?)")
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{number}: not a JSON object ({exc.msg})") from None
        if "train/loss" in row:
            losses.append((row["step"], row["train/loss"]))
        if "bench/overall" in row:
            bench.append((row["step"], row["bench/overall"]))
    return losses, bench


def render(losses: list[tuple[int, float]], bench: list[tuple[int, float]], width: int = 40) -> str:
    lines = ["step   train/loss"]
    top = max((v for _, v in losses), default=1.0) or 1.0
    for step, value in losses:
        lines.append(f"{step:>5}  {value:9.4f}  {'#' * max(1, round(width * value / top))}")
    if bench:
        lines.append("")
        lines.append("step   held-out accuracy, % (bench/overall x100; metrics.jsonl keeps the fraction)")
        for step, value in bench:
            lines.append(f"{step:>5}  {100 * value:9.1f}  {'#' * round(width * value)}")
        lines.append(f"\nbefore training: {100 * bench[0][1]:.1f} %   after training: {100 * bench[-1][1]:.1f} %")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch/curve.py", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--width", type=int, default=40)
    args = parser.parse_args(argv)
    try:
        curves = read_metrics(args.run_dir)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"launch/curve.py: error: {exc}", file=sys.stderr)
        return 2
    print(render(*curves, width=args.width))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
