#!/usr/bin/env python
"""A run's learning curve and held-out accuracy before / during / after training.

    python launch/curve.py RUN_DIR [--width 40]

``python -m train.curve`` is an alias.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/curve.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from train.curve import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
