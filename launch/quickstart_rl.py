#!/usr/bin/env python
"""The quickstart's RL stage: its prompt sources beside a stand-in and the think-format SFT GRPO starts from.

    python launch/quickstart_rl.py STANDIN OUT [--model tiny-qwen2.5-vl]

``python -m train.quickstart_rl`` is an alias; then ``launch/grpo.py recipe=quickstart_rl data.root=STANDIN
model.name_or_path=OUT``.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/quickstart_rl.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from train.quickstart_rl import main  # noqa: E402

if __name__ == "__main__":
    from launch._env import one_line_errors

    sys.exit(one_line_errors("launch/quickstart_rl.py", main, sys.argv[1:]))
