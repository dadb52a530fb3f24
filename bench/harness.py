"""Measuring side by side: interleaved repeats of ours and a baseline, medians, spreads, ratios.

A benchmark hands two zero-argument callables to :func:`compare`; each returns one measured value
(a throughput, a wall time, a fraction). They are called alternately, in ABBA order (ours, baseline,
baseline, ours, ...), so that slow drift of a shared machine (other jobs, thermal, caches) hits both
sides alike. The ratio is taken per pair (ours_i / baseline_i) and summarised like the values
themselves: median, quartiles, min and max.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


def summarize(values: list[float]) -> dict[str, Any]:
    """Median and spread (quartiles, min, max) of ``values``; the raw values are kept."""
    vals = sorted(float(v) for v in values)
    if not vals:
        raise ValueError("nothing to summarize: no values were measured")
    if len(vals) >= 2:
        q1, _, q3 = statistics.quantiles(vals, n=4, method="inclusive")
    else:
        q1 = q3 = vals[0]
    return {"median": statistics.median(vals), "spread": {"q1": q1, "q3": q3, "min": vals[0], "max": vals[-1]},
            "n": len(vals), "values": [float(v) for v in values]}


@dataclass
class Figure:
    """One side-by-side result: ours, the baseline, and their ratio (per interleaved pair)."""

    name: str
    """Short id, unique within its benchmark (``samples_per_s``)."""
    what: str
    """One line: what is measured, on what."""
    unit: str
    """Unit of ``ours`` and ``baseline`` (the ratio has none)."""
    ours: dict
    """summarize() of our values."""
    baseline: dict
    """summarize() of the baseline's values."""
    ratio: dict
    """summarize() of ours_i / baseline_i."""
    baseline_name: str
    """What the baseline is (``TRL SFTTrainer``, ``lmms-eval reference scorer`` ...)."""
    better: str = "higher"
    """``higher`` or ``lower``: which direction of ``ours`` (and of the ratio) is good."""
    target: str | None = None
    """The target this figure is checked against, in words (``ratio <= 1.05``), if any."""
    meets_target: bool | None = None
    """Whether the median meets ``target``; None when there is no target."""
    notes: str = ""
    """Anything a reader needs to interpret the figure."""
    extra: dict = field(default_factory=dict)
    """Further numbers worth keeping (e.g. a share of wall time)."""
    checks: list = field(default_factory=list)
    """Known-answer checks (:func:`known_answer`): where both sides do the same work, a value they must agree
    on (the first step's loss ...). A failed check is flagged in the output and the document."""

    def to_dict(self) -> dict:
        return asdict(self)


def pair_figure(name: str, what: str, unit: str, ours: list[float], baseline: list[float], baseline_name: str,
                *, better: str = "higher", target: str | None = None,
                check: Callable[[dict, dict, dict], bool] | None = None, notes: str = "",
                extra: dict | None = None, checks: list[dict] | None = None) -> Figure:
    """A Figure from paired values (``ours[i]`` measured next to ``baseline[i]``)."""
    if len(ours) != len(baseline):
        raise ValueError(f"{name}: {len(ours)} values of ours but {len(baseline)} of the baseline")
    if better not in ("higher", "lower"):
        raise ValueError(f"{name}: better={better!r} is not 'higher' or 'lower'")
    ratios = [o / b if b else float("inf") for o, b in zip(ours, baseline)]
    o, b, r = summarize(ours), summarize(baseline), summarize(ratios)
    meets = None if check is None else bool(check(o, b, r))
    return Figure(name=name, what=what, unit=unit, ours=o, baseline=b, ratio=r, baseline_name=baseline_name,
                  better=better, target=target, meets_target=meets, notes=notes, extra=dict(extra or {}),
                  checks=list(checks or []))


def known_answer(name: str, what: str, ours, baseline, *, rel_tol: float = 0.0, abs_tol: float = 0.0) -> dict:
    """A check that both sides give the same value (each a number or a list of numbers, pair by pair): ``ok``
    when every pair agrees within ``abs_tol + rel_tol * |baseline|``."""
    a = [float(v) for v in (ours if isinstance(ours, (list, tuple)) else [ours])]
    b = [float(v) for v in (baseline if isinstance(baseline, (list, tuple)) else [baseline])]
    if len(a) != len(b) or not a:
        raise ValueError(f"{name}: {len(a)} values of ours but {len(b)} of the baseline")
    diffs = [abs(x - y) for x, y in zip(a, b)]
    ok = all(d <= abs_tol + rel_tol * abs(y) for d, y in zip(diffs, b))
    rel = max(d / abs(y) if y else (0.0 if d == 0 else float("inf")) for d, y in zip(diffs, b))
    return {"name": name, "what": what, "ours": a, "baseline": b, "max_abs_diff": max(diffs),
            "max_rel_diff": rel, "rel_tol": rel_tol, "abs_tol": abs_tol, "ok": bool(ok)}


def compare(ours: Callable[[], float], baseline: Callable[[], float], repeats: int, warmup: int = 1,
            progress: Callable[[str], None] | None = None) -> tuple[list[float], list[float]]:
    """Call ``ours`` and ``baseline`` ``warmup`` times each (discarded), then ``repeats`` times each in
    ABBA order; return their values, pair by pair."""
    a, b = compare_many(lambda: {"value": ours()}, lambda: {"value": baseline()}, repeats, warmup, progress)
    return a["value"], b["value"]


def compare_many(ours: Callable[[], dict], baseline: Callable[[], dict], repeats: int, warmup: int = 1,
                 progress: Callable[[str], None] | None = None) -> tuple[dict[str, list], dict[str, list]]:
    """:func:`compare` for callables that measure several values at once (a dict each call): returns
    ``{key: [values]}`` per side, pair by pair."""
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    a_vals: dict[str, list] = {}
    b_vals: dict[str, list] = {}
    for _ in range(warmup):
        ours()
        baseline()
    for i in range(repeats):
        if i % 2 == 0:
            a, b = ours(), baseline()
        else:
            b, a = baseline(), ours()
        for key, value in a.items():
            a_vals.setdefault(key, []).append(float(value))
        for key, value in b.items():
            b_vals.setdefault(key, []).append(float(value))
        if progress is not None:
            progress(f"repeat {i + 1}/{repeats}: ours {_short(a)}, baseline {_short(b)}")
    return a_vals, b_vals


def _short(values: dict) -> str:
    return ", ".join(f"{k} {v:.4g}" for k, v in values.items())


def cpu_clock() -> float:
    """CPU seconds of this process (all its threads): the clock of the step and throughput benchmarks. Each
    benchmark process runs one torch thread, so on an idle machine this equals wall time; on a shared one it
    leaves out the time other jobs held the core (see docs/PERFORMANCE.md)."""
    return time.process_time()


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds`` (perf_counter)."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


@dataclass
class Context:
    """What every benchmark gets: sizes, repeats, a scratch directory and a logger."""

    quick: bool
    """Smoke-run sizes (the whole harness in about two minutes)."""
    repeats: int
    """Measured repeats per side (after warm-up)."""
    warmup: int
    """Discarded calls per side before measuring."""
    workdir: Any
    """A pathlib.Path for scratch files, removed at the end of the run."""
    log: Callable[[str], None] = print
    """Progress lines (stderr)."""

    def pick(self, quick, full):
        """``quick`` in a smoke run, else ``full``."""
        return quick if self.quick else full
