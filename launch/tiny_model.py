#!/usr/bin/env python
"""Write the embedded tiny Qwen2.5-VL as a plain Hugging Face directory.

    python launch/tiny_model.py --out DIR [--seed 0]

``python -m train.tiny`` is an alias.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from train.tiny import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
