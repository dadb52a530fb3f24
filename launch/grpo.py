#!/usr/bin/env python
"""GRPO: python launch/grpo.py recipe=NAME [key=value ...] (also under accelerate or torchrun)"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from train.cli import main  # noqa: E402


def _run(recipe, flags):
    from train.grpo import run

    return run(recipe, flags)


if __name__ == "__main__":
    sys.exit(main("launch/grpo.py", sys.argv[1:], _run))
