#!/usr/bin/env python
"""Evaluate a checkpoint on SpatialTree-Bench: python launch/evaluate.py model.name_or_path=PATH eval.bench=BENCH train.output_dir=OUT

Compare two results: python launch/evaluate.py --compare A/summary.json B/summary.json
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/evaluate.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from train.cli import main  # noqa: E402
from train.config import Recipe  # noqa: E402

COMPARE_USAGE = """
  --compare A B    print per-node scores and deltas (B - A) of two summary.json files
                   (or run directories: their eval/final, else the latest eval/step_N)"""


def _run(recipe: Recipe, flags: list[str]) -> int:
    from eval_hooks.offline import run
    from train.model_loading import load_model_and_processor

    return run(recipe, flags, loader=load_model_and_processor)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if "--compare" in argv and not any(a in ("-h", "--help") for a in argv):
        from eval_hooks.offline import compare_main

        sys.exit(compare_main(argv))
    sys.exit(main("launch/evaluate.py", argv, _run, extra_flags=["--compare"], extra_usage=COMPARE_USAGE))
