#!/usr/bin/env python
"""The synthetic data engine: one task's rows, or stand-ins for every registry source (docs/ENGINE.md).

    python launch/engine.py --task distance --n 200 --seed 0 --out DIR [--image-size 56] [--format both]
    python launch/engine.py --standin DIR --scale small [--seed 0] [--registry PATH]
    python launch/engine.py --list
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/engine.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from data_mix.engine.cli import main  # noqa: E402

if __name__ == "__main__":
    from launch._env import one_line_errors

    sys.exit(one_line_errors("launch/engine.py", main, sys.argv[1:]))
