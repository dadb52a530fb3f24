"""Run every launcher under the project's environment, whatever python started it.

``python launch/sft.py ...`` with a system python (no ``.venv`` activated) used to die on ``No module named
'omegaconf'``. Each launcher calls :func:`use_project_venv` first: when the checkout has ``.venv`` (``make setup``)
and this interpreter is not that environment's, the launcher is re-executed with ``.venv/bin/python`` (same
arguments and environment: torchrun's RANK/WORLD_SIZE pass through). Without ``.venv`` and without the project's
packages, one line says how to set it up (exit 2). ``SPATIALTREE_NO_VENV=1`` keeps the current interpreter (an
environment of your own with the project installed).

Standard library only, and cheap: it runs before anything else is imported.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".venv"
NEEDED = ("omegaconf", "yaml", "numpy")


def _same(a: str | Path, b: str | Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def use_project_venv(prog: str) -> None:
    """Re-exec under ``.venv/bin/python`` when it exists and is not running; else check the packages are there."""
    python = VENV / "bin" / "python"
    keep = os.environ.get("SPATIALTREE_NO_VENV") == "1"
    if not keep and python.exists() and not _same(sys.prefix, VENV):
        script = os.path.abspath(sys.argv[0])
        os.execv(str(python), [str(python), script, *sys.argv[1:]])
    missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
    if missing:
        why = "SPATIALTREE_NO_VENV=1 keeps it" if keep and python.exists() else f"there is no {VENV}"
        print(f"{prog}: error: this python ({sys.executable}) lacks the project's packages ({', '.join(missing)}) and "
              f"{why}: run `make setup` in {ROOT} (creates .venv; the launchers then use it by "
              "themselves), or `pip install -e .` into an environment of your own", file=sys.stderr)
        sys.exit(2)


def one_line_errors(prog: str, main, argv: list[str]) -> int:
    """``main(argv)`` with a path or value the user gave wrong (OSError, ValueError) as one line, exit 1, and Ctrl-C
    as one line, exit 130 (for the small launchers that have no error handling of their own).
    ``SPATIALTREE_TRACEBACK=1`` shows the traceback instead."""
    if os.environ.get("SPATIALTREE_TRACEBACK") == "1":
        return main(argv)
    try:
        return main(argv)
    except KeyboardInterrupt:
        print(f"\n{prog}: error: interrupted (Ctrl-C)", file=sys.stderr, flush=True)
        return 130
    except (OSError, ValueError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"\n{prog}: error: {type(exc).__name__}: {text} (SPATIALTREE_TRACEBACK=1 shows where)",
              file=sys.stderr, flush=True)
        return 1
