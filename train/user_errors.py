"""One line on stderr for an error the user can fix; the list of those errors is train.run.user_errors."""

from __future__ import annotations

import sys


def report_user_error(prog: str, exc: BaseException) -> int:
    """One line on stderr for an error the user can fix (no traceback), with the hint to skip a bad sample
    instead; returns the exit code 1 (or the error's own ``exit_code``: 2 when nothing could be checked,
    data_mix.decontam.EvalSetError). The leading newline ends an open progress-bar line."""
    from data_mix.badsample import BadSample

    message = str(exc)
    if isinstance(exc, BadSample) and "on_bad_sample" not in message:
        message += " (data.on_bad_sample=skip counts and skips bad samples instead)"
    print(f"\n{prog}: error: {message}", file=sys.stderr, flush=True)
    return int(getattr(exc, "exit_code", 1))
