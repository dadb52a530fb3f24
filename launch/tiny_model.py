#!/usr/bin/env python
"""Write an embedded tiny model (one per family: train/tiny/) as a plain Hugging Face directory.

    python launch/tiny_model.py --out DIR [--name tiny-qwen3-vl] [--seed 0]

``python -m train.tiny`` is an alias.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/tiny_model.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from train.tiny import main  # noqa: E402

if __name__ == "__main__":
    from launch._env import one_line_errors

    sys.exit(one_line_errors("launch/tiny_model.py", main, sys.argv[1:]))
