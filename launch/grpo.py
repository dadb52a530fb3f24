#!/usr/bin/env python
"""GRPO: python launch/grpo.py recipe=NAME [key=value ...] [--dry-run] (also under accelerate or torchrun)

--dry-run: check and convert the data, write what the backend needs, print it, and stop before training
(grpo.backend=verl: the parquet files, the verl config and the command that would run).
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/grpo.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from train.cli import main  # noqa: E402
from train.config import Recipe  # noqa: E402

DRY_RUN_USAGE = " [--dry-run]\n\n  --dry-run        check and convert the data, write what the backend needs, print it; no training"


def _run(recipe: Recipe, flags: list[str]) -> int:
    from train.grpo.backends import run

    return run(recipe, flags)


if __name__ == "__main__":
    sys.exit(main("launch/grpo.py", sys.argv[1:], _run, extra_flags=["--dry-run"], extra_usage=DRY_RUN_USAGE))
