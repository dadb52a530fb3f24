"""``python -m data_mix.engine``: an alias of ``launch/engine.py`` (the engine's command line is data_mix/engine/cli.py)."""

import sys

from data_mix.engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
