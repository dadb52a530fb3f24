"""A local sweep job's output: everything to its job.log, and its progress to the terminal with a job prefix.

``launch/sweep.py --local`` used to print nothing between a job's start and its end. Each chunk of the job's
output (stdout and stderr merged) goes to job.log as it is; each line (split at newlines and at the carriage
returns progress bars redraw with) is echoed as ``[k/N name] line``, except that a redrawn progress bar is echoed
at most once every ``bar_every`` seconds (its last state always reaches job.log).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import IO

BAR = re.compile(r"\d+%\||\|\s*\d+/\d+|\d+/\d+ \[")
"""What a tqdm bar looks like ("40%|####", "| 3/8", "3/8 [")."""


def stream(source: IO[bytes], log: IO[str], echo: Callable[[str], None], prefix: str, bar_every: float = 10.0) -> None:
    """Copy ``source`` to ``log`` and echo its lines with ``prefix`` until ``source`` ends."""
    pending = ""
    last_bar = 0.0
    read = getattr(source, "read1", source.read)
    while True:
        chunk = read(4096)
        if not chunk:
            break
        text = chunk.decode("utf-8", errors="replace")
        log.write(text)
        log.flush()
        pending += text
        parts = re.split(r"[\r\n]", pending)
        pending = parts.pop()
        for line in parts:
            line = line.rstrip()
            if not line:
                continue
            if BAR.search(line):
                now = time.monotonic()
                if now - last_bar < bar_every:
                    continue
                last_bar = now
            echo(f"{prefix} {line}")
    if pending.strip():
        echo(f"{prefix} {pending.rstrip()}")
