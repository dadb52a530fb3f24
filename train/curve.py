"""Print a run's learning curve and its held-out accuracy before / during / after training.

    python launch/curve.py RUN_DIR [--width 40]

Reads ``RUN_DIR/metrics.jsonl`` (train/loss per log step, bench/overall per evaluation).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def read_metrics(run_dir: str | Path) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
    """(step, train loss) and (step, bench/overall) pairs from metrics.jsonl."""
    losses, bench = [], []
    path = Path(run_dir) / "metrics.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no metrics (is {run_dir} a run directory?)")
    for line in path.read_text().splitlines():
        row = json.loads(line)
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
        lines.append("step   held-out accuracy (bench/overall)")
        for step, value in bench:
            lines.append(f"{step:>5}  {value:9.3f}  {'#' * round(width * value)}")
        lines.append(f"\nbefore training: {bench[0][1]:.3f}   after training: {bench[-1][1]:.3f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch/curve.py", description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--width", type=int, default=40)
    args = parser.parse_args(argv)
    print(render(*read_metrics(args.run_dir), width=args.width))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
