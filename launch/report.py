#!/usr/bin/env python
"""A sweep's results as the paper's tables and figures: python launch/report.py SWEEP_DIR [--baseline NAME]"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/report.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from eval_hooks.sweep_report import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
