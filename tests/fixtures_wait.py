"""Polling with a deadline, for the tests that wait on daemons (Slurm, simulated nodes)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest


def wait_until(predicate: Callable[[], bool], timeout: float, what: str, on_fail: Callable[[], str] = lambda: "") -> None:
    """Poll ``predicate`` every 0.5 s; fail the test naming ``what`` (and ``on_fail()``'s details) after ``timeout``."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{on_fail()}")
