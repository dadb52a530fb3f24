#!/usr/bin/env python
"""Evaluate a checkpoint on SpatialTree-Bench: python launch/evaluate.py model.name_or_path=PATH eval.bench=BENCH train.output_dir=OUT"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from train.cli import main  # noqa: E402


def _run(recipe, flags):
    from eval_hooks.offline import run

    return run(recipe, flags)


if __name__ == "__main__":
    sys.exit(main("launch/evaluate.py", sys.argv[1:], _run))
