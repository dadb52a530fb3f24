#!/usr/bin/env python
"""Supervised fine-tuning: torchrun --nproc_per_node N launch/sft.py recipe=NAME [key=value ...] [--dry-run]

--dry-run: check the recipe and every training row (file, row, reason of each bad one), plan the mix and the steps,
say what the evaluations will cost, and stop before any model loads; nothing is written.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/sft.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from train.cli import main  # noqa: E402
from train.config import Recipe  # noqa: E402

DRY_RUN_USAGE = (" [--dry-run]\n\n  --dry-run        check every training row, plan the mix and steps, say the evaluation "
                 "plan; no model loads, nothing is written")


def _run(recipe: Recipe, flags: list[str]) -> int:
    from train.sft import run_cli

    return run_cli(recipe, flags)


if __name__ == "__main__":
    sys.exit(main("launch/sft.py", sys.argv[1:], _run, extra_flags=["--dry-run"], extra_usage=DRY_RUN_USAGE))
