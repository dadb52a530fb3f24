#!/usr/bin/env python
"""Write an embedded tiny model (one per family: train/tiny/) as a plain Hugging Face directory.

    python launch/tiny_model.py --out DIR [--name tiny-qwen3-vl] [--seed 0]

``python -m train.tiny`` is an alias.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from train.tiny import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
