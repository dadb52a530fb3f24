"""``python -m train.tiny --out DIR [--name NAME]``."""

from train.tiny import main

raise SystemExit(main())
