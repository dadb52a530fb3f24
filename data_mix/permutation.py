"""Seeded bijections on [0, n) in O(1) memory, and the interleaving of sources in a mix.

:class:`Permutation` is a keyed Feistel network on the next even power of two, cycle-walked into
[0, n): a shuffle of 10 million rows without materialising it, computable at any index (so a run
can resume mid-epoch and shards can read disjoint slices).

:class:`Interleave` orders the draws of several sources: source s with k_s draws has its j-th
draw at time (j + phase_s) / k_s; draws are taken in order of (time, source). Every prefix of the
stream therefore holds each source in proportion to its count (+-1), and the stream can be
entered at any position in O(sources) without replaying it.
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Iterator

_M64 = (1 << 64) - 1
PHASE_DENOM = 1 << 20


def stable_key(*parts) -> int:
    """A 64-bit key from any printable parts (same on every machine and Python version)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


class Permutation:
    """A pseudo-random bijection of [0, n) keyed by ``key``."""

    ROUNDS = 6

    def __init__(self, n: int, key: int):
        self.n = int(n)
        bits = max(2, (self.n - 1).bit_length())
        bits += bits % 2
        self._half = bits // 2
        self._mask = (1 << self._half) - 1
        self._keys = [_splitmix64(key + r) for r in range(self.ROUNDS)]

    def __len__(self) -> int:
        return self.n

    def _enc(self, x: int) -> int:
        left, right, mask = x >> self._half, x & self._mask, self._mask
        for k in self._keys:
            left, right = right, left ^ (_splitmix64(right ^ k) & mask)
        return (left << self._half) | right

    def __call__(self, i: int) -> int:
        if not 0 <= i < self.n:
            raise IndexError(f"index {i} outside [0, {self.n})")
        y = self._enc(i)
        while y >= self.n:  # cycle walking keeps it a bijection of [0, n)
            y = self._enc(y)
        return y


class Interleave:
    """The order in which ``counts[s]`` draws of each source s are taken (see module docstring)."""

    def __init__(self, counts: list[int], phases: list[int]):
        self.counts = [int(c) for c in counts]
        self.phases = [int(a) % PHASE_DENOM for a in phases]
        self.total = sum(self.counts)

    def time(self, s: int, j: int) -> float:
        """Time of source s's j-th draw (one correctly rounded division: the same everywhere)."""
        return (j * PHASE_DENOM + self.phases[s]) / (self.counts[s] * PHASE_DENOM)

    def _before(self, s: int, tau: float) -> int:
        """How many of source s's draws have time < tau."""
        k = self.counts[s]
        if k == 0:
            return 0
        j = min(k, max(0, math.ceil(tau * k - self.phases[s] / PHASE_DENOM)))
        while j > 0 and self.time(s, j - 1) >= tau:
            j -= 1
        while j < k and self.time(s, j) < tau:
            j += 1
        return j

    def _frontier(self, position: int) -> list[int]:
        """Per-source draw counts at a point of the stream at or before ``position``."""
        margin = len(self.counts) + 2
        while True:
            tau = max(0, position - margin) / self.total
            done = [self._before(s, tau) for s in range(len(self.counts))]
            if sum(done) <= position:
                return done
            margin *= 2

    def iter_from(self, position: int = 0) -> Iterator[tuple[int, int, int]]:
        """(position, source, draw number within the source) from ``position`` to the end."""
        if position >= self.total:
            return
        done = self._frontier(position)
        heap = [(self.time(s, j), s, j) for s, j in enumerate(done) if j < self.counts[s]]
        heapq.heapify(heap)
        pos = sum(done)
        while heap:
            _t, s, j = heap[0]
            if j + 1 < self.counts[s]:
                heapq.heapreplace(heap, (self.time(s, j + 1), s, j + 1))
            else:
                heapq.heappop(heap)
            if pos >= position:
                yield pos, s, j
            pos += 1
