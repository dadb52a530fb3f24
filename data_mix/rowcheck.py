"""Every row a mix can draw, checked once before training starts.

A bad row found only when training draws it stops a run minutes (or hours) after the model loaded; an over-long
row counted into a source's mean tokens made the plan ask for absurd amounts of other data ("not enough data").
:func:`check_rows` reads every available row of every source of the mix once, in file order: the row parsed and
converted (schema, placeholders, assistant turns), its media headers opened and its tokens counted by the mix's
own :class:`~data_mix.tokens.TokenCounter` (the one pass that counts tokens: the plan and the draws reuse the
counts kept in a :class:`RowTable`), and compared with ``data.max_length``. Bad rows follow ``data.on_bad_sample``
through the usual :class:`~data_mix.badsample.BadSampleTracker`: ``error`` raises the first (file, row, reason),
``skip`` counts them per reason (and stops past ``data.max_skip_fraction``).

Not found here: pixel data cut short after a good header (``truncated_image``) and undecodable video frames show
only when the media are decoded, which training does (decoding every image twice would double the cost).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

from data_mix.badsample import BadSample, BadSampleTracker

UNCHECKED = -1


def too_long(sample, tokens: int, data) -> BadSample | None:
    """The ``too_long`` BadSample of a row of ``tokens`` tokens when that is more than ``data.max_length``."""
    if tokens <= data.max_length:
        return None
    return BadSample(sample.file, sample.row, "too_long",
                     f"row is {tokens:,} tokens, data.max_length is {data.max_length}")


class RowTable:
    """What the check found for one source: the tokens of every good row, the BadSample of every bad one."""

    def __init__(self, n: int):
        self.tokens = np.full(n, UNCHECKED, dtype=np.int64)
        self.bad: dict[int, BadSample] = {}

    def known(self, i: int) -> int | None:
        """Tokens of row ``i`` (raises its BadSample when it is bad); None when it was not checked."""
        if i in self.bad:
            raise self.bad[i]
        n = int(self.tokens[i])
        return None if n == UNCHECKED else n


def available_mask(draws: Any) -> np.ndarray:
    """Rows of the source the mix can draw (all, or the seeded pool of ``fraction`` < 1)."""
    n, pool = len(draws.rows), draws.available_row_ids()
    if pool is None:
        return np.ones(n, dtype=bool)
    mask = np.zeros(n, dtype=bool)
    mask[pool] = True
    return mask


def check_rows(draws: dict[str, Any], counter: Any, data, progress: bool = False) -> BadSampleTracker:
    """Check every available row of every source in ``draws`` (data_mix.mixer.SourceDraws by source name, counted
    by ``counter``, the mix's TokenCounter); each source's :class:`RowTable` is kept on its
    draws (``draws[s].table``). Returns the tracker that counted the rows (``error``: the first bad row raised)."""
    from tqdm import tqdm

    tracker = BadSampleTracker.from_config(data)
    total = sum(draws[s].available for s in draws)
    with tqdm(total=total, desc="checking every training row", unit="row", file=sys.stderr, disable=not progress,
              mininterval=2.0) as bar:
        for d in draws.values():
            table = RowTable(len(d.rows))
            mask = available_mask(d)
            for i, item in d.rows.indexed():
                if not mask[i]:
                    continue
                bar.update(1)
                exc = item if isinstance(item, BadSample) else None
                if exc is None:
                    try:
                        tokens = counter(item)
                        exc = too_long(item, tokens, data)
                    except BadSample as err:
                        exc = err
                if exc is not None:
                    table.bad[i] = exc
                    tracker.bad(exc)  # raises under data.on_bad_sample=error (the bar closes with the block)
                    continue
                table.tokens[i] = tokens
                tracker.ok()
            d.table = table
    return tracker


def summary_line(tracker: BadSampleTracker, sources: int) -> str:
    """One line on what the row check found: the bad rows per reason and the first ones (file, row, reason)."""
    head = f"checked every training row before the model loads: {tracker.seen} rows of {sources} source(s)"
    if not tracker.skipped:
        return head + ", none bad"
    per = ", ".join(f"{r}: {n}" for r, n in sorted(tracker.counts.items()))
    return (f"{head}, {tracker.skipped} bad ({per}), skipped whenever drawn (data.on_bad_sample=skip); first: "
            + "; ".join(tracker.examples[:3]))
