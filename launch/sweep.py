#!/usr/bin/env python
"""Sweeps as Slurm job arrays: python launch/sweep.py SWEEP.yaml [--dry-run|--submit|--local|--status] [--set k=v]"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/sweep.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from sweeps.cli import main  # noqa: E402
from train.cli import explain_if_asked  # noqa: E402

if __name__ == "__main__":
    explained = explain_if_asked("launch/sweep.py", sys.argv[1:])  # --explain KEY: a recipe key of the runs
    sys.exit(main(sys.argv[1:]) if explained is None else explained)
