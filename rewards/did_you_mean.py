"""The project's one "did you mean" hint for an unknown name (a recipe key, a source, a metric, a leaf ...).

It lives in rewards, the package every other one may import (rewards itself imports nothing else of the
project), and uses only the standard library.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: object, choices: Iterable[object], n: int = 3) -> str:
    """``"; did you mean 'a' or 'b'?"`` with up to ``n`` close choices, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=n, cutoff=0.5)
    return ("; did you mean " + " or ".join(repr(c) for c in close) + "?") if close else ""
