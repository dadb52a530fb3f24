#!/usr/bin/env python
"""The quickstart's data (recipes/sft/quickstart_sft.yaml): training rows and held-out records.

    python launch/quickstart_data.py DIR [--train 12800] [--heldout 200] [--seed 1] [--kinds closer[,farther]] [--options-by position|name]

``python -m train.quickstart_data`` is an alias.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/quickstart_data.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from train.quickstart_data import main  # noqa: E402

if __name__ == "__main__":
    from launch._env import one_line_errors

    sys.exit(one_line_errors("launch/quickstart_data.py", main, sys.argv[1:]))
