#!/usr/bin/env python
"""Merge a LoRA adapter into its base model: a plain Hugging Face directory.

    python launch/merge_lora.py --base BASE --adapter ADAPTER_DIR --out OUT

``python -m train.lora`` is an alias.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/merge_lora.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from train.lora import main  # noqa: E402

if __name__ == "__main__":
    from launch._env import one_line_errors

    sys.exit(one_line_errors("launch/merge_lora.py", main, sys.argv[1:]))
