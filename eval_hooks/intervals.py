"""95% intervals for SpatialTree-Bench scores and for the difference of two models (bootstrap).

Why: Table 2/3 deltas of 0.1-1.5 points are smaller than the sampling noise of a benchmark of a few thousand
records; a number without an interval cannot be told from noise.

How (numpy, vectorised):

- A node's score is a fixed linear combination of leaf means (the weighted tree; a leaf's mean is the mean of
  its records). The coefficients are read off :func:`rewards.taxonomy.aggregate_nodes` itself (one call per
  leaf with that leaf's mean 1 and the others 0), so the intervals use exactly the weights, mode (reference:
  an empty leaf counts 0; renormalize: left out) and missing leaves that the scores use.
- Bootstrap over records, stratified by leaf (each leaf keeps its record count, as the benchmark does). With
  N > 1 sampled passes (``eval.repeats``) a drawn record brings its N scores (their mean): the pass-to-pass
  noise of a record is then part of the spread between drawn records, so the interval covers both the choice
  of records and the sampling of the answers. Drawing the passes again on top of that counts that noise twice:
  on the simulation below such a two-stage draw covered a known delta 99% of the time instead of 95%
  (measured while writing this module), so passes are not drawn separately. The interval is the
  2.5th-97.5th percentile of the drawn node scores.
- A delta between two models is bootstrapped paired: the same drawn records for both (records matched by id),
  each model's passes drawn on their own. A delta is significant when that interval excludes 0.

``tests/test_eval_intervals.py`` checks coverage on simulated evaluations with a known true value / difference.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

import numpy as np

from rewards import taxonomy as tx

N_BOOT = 2000
"""Bootstrap draws (project choice: percentile noise about 0.1 point at 95%)."""
SEED = 0
"""Seed of the bootstrap draws, so a summary's intervals are reproducible (project choice)."""
LEVEL = 0.95
INTERVAL_NOTE = ("ci95: 95% percentile bootstrap over records (stratified by leaf, each drawn record with its mean "
                 f"over passes; {N_BOOT} draws, seed {SEED}); eval_hooks/intervals.py")
"""What summary.json says about its ``ci95`` fields."""

Interval = tuple[float, float]


def record_key(rec: Mapping[str, Any]) -> str:
    """What pairs a record of one model's predictions with the same record of another's."""
    return f"{rec.get('id')}@{rec.get('where')}"


def score_table(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """leaf key -> record key -> the record's score in each pass (``repeat`` 0.. ; absent = one pass)."""
    table: dict[str, dict[str, dict[int, float]]] = defaultdict(lambda: defaultdict(dict))
    for rec in records:
        leaf = tx.node(rec["leaf"]).key if "/" in str(rec["leaf"]) else tx.leaf(rec["leaf"]).key
        table[leaf][record_key(rec)][int(rec.get("repeat", 0))] = float(rec["score"])
    return {leaf: {k: [v[r] for r in sorted(v)] for k, v in recs.items()} for leaf, recs in table.items()}


def matrices(table: Mapping[str, Mapping[str, list[float]]], keys_per_leaf: Mapping[str, Sequence[str]] | None = None
             ) -> dict[str, np.ndarray]:
    """leaf -> (records, passes) array, rows in ``keys_per_leaf`` order (default: sorted record keys); a record
    missing a pass gets its mean over the passes it has."""
    width = max(len(v) for recs in table.values() for v in recs.values())
    out = {}
    for leaf, recs in table.items():
        keys = sorted(recs) if keys_per_leaf is None else keys_per_leaf.get(leaf)
        if not keys:
            continue
        mat = np.empty((len(keys), width))
        for i, k in enumerate(keys):
            row = recs[k]
            mat[i] = row if len(row) == width else list(row) + [float(np.mean(row))] * (width - len(row))
        out[leaf] = mat
    return out


def mean_records(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One record per evaluated record with its score averaged over passes (what the tree aggregates)."""
    by_key: dict[str, dict[str, Any]] = {}
    scores: dict[str, list[float]] = defaultdict(list)
    for rec in records:
        k = record_key(rec)
        by_key.setdefault(k, dict(rec))
        scores[k].append(float(rec["score"]))
    out = []
    for k, rec in by_key.items():
        rec["score"] = float(np.mean(scores[k]))
        out.append(rec)
    return out


def coefficients(leaves: Sequence[str], counts: Mapping[str, int], mode: str, weighting: str,
                 missing: Iterable[str] = ()) -> tuple[list[str], np.ndarray]:
    """(node keys with a score, matrix C) such that node scores = C @ leaf means (leaves in ``leaves`` order)."""
    return _coefficients(tuple(leaves), tuple(sorted(counts.items())), mode, weighting, tuple(sorted(missing)))


@lru_cache(maxsize=64)
def _coefficients(leaves: tuple[str, ...], counts: tuple, mode: str, weighting: str,
                  missing: tuple[str, ...]) -> tuple[list[str], np.ndarray]:
    counts = dict(counts)
    base = tx.aggregate_nodes({k: 0.0 for k in leaves}, counts, mode=mode, weighting=weighting, missing=missing)
    keys = [n.key for n in tx.ROOT.walk() if base.scores.get(n.key) is not None]
    coef = np.zeros((len(keys), len(leaves)))
    for j, leaf in enumerate(leaves):
        agg = tx.aggregate_nodes({k: float(k == leaf) for k in leaves}, counts, mode=mode, weighting=weighting,
                                 missing=missing)
        coef[:, j] = [agg.scores[k] for k in keys]
    coef.setflags(write=False)
    return keys, coef


def leaf_draws(mats: Sequence[Mapping[str, np.ndarray]], leaves: Sequence[str], n_boot: int,
               rng: np.random.Generator) -> list[np.ndarray]:
    """Per model, a (B, leaves) array of bootstrapped leaf means. ``mats``: per model, leaf -> (records, passes)
    with the same records in the same rows for every model; the record draw is shared by all models. A drawn
    record brings all its passes (its mean over them). Each leaf's draws are widened by sqrt(n / (n - 1)) about
    its mean (the resampled mean's variance is (n - 1) / n of the sample's estimate of it; with 30 records per
    leaf, uncorrected intervals covered 92.8% in the test below)."""
    sizes = np.array([mats[0][leaf].shape[0] for leaf in leaves])
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    col_leaf = np.repeat(np.arange(len(leaves)), sizes)  # one column per record slot, all leaves side by side
    n_col = sizes[col_leaf]
    # float32 uniforms are 4x cheaper than integers with per-column bounds; min() guards the rounding at n
    pick = (rng.random((n_boot, int(sizes.sum())), dtype=np.float32) * n_col.astype(np.float32)).astype(np.int64)
    idx = starts[col_leaf] + np.minimum(pick, n_col - 1)
    scale = np.sqrt(sizes / np.maximum(sizes - 1, 1))
    out = []
    for m in mats:
        means = np.concatenate([m[leaf].mean(axis=1) for leaf in leaves])
        leaf_mean = np.add.reduceat(means, starts) / sizes
        drawn = np.add.reduceat(means[idx], starts, axis=1) / sizes
        out.append(leaf_mean + scale * (drawn - leaf_mean))
    return out


def _combine(draws: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """(B, leaves) leaf draws -> (B, nodes) node draws. einsum without BLAS: a small product, and BLAS threads
    spinning on a busy machine made it the slowest step."""
    return np.einsum("bl,nl->bn", draws, coef, optimize=False)


def _percentiles(draws: np.ndarray, low: float, high: float) -> np.ndarray:
    """The 95% percentile interval of each column, kept inside [low, high] (a score is in [0, 1], a delta in
    [-1, 1]; the small-sample widening can reach past them on a leaf of a few records)."""
    tail = 100 * (1 - LEVEL) / 2
    return np.clip(np.percentile(draws, [tail, 100 - tail], axis=0).T, low, high)


def node_intervals(records: Sequence[Mapping[str, Any]], mode: str, weighting: str = tx.DEFAULT_WEIGHTING,
                   missing: Iterable[str] = (), n_boot: int = N_BOOT, seed: int = SEED) -> dict[str, Interval]:
    """Node key -> 95% interval of its score, for every node with a score."""
    table = score_table(records)
    return matrix_intervals(matrices(table), mode, weighting, missing, n_boot, seed) if table else {}


def matrix_intervals(mats: Mapping[str, np.ndarray], mode: str, weighting: str = tx.DEFAULT_WEIGHTING,
                     missing: Iterable[str] = (), n_boot: int = N_BOOT, seed: int = SEED) -> dict[str, Interval]:
    """:func:`node_intervals` from leaf -> (records, passes) score arrays."""
    leaves = sorted(mats)
    nodes, coef = coefficients(leaves, {leaf: len(mats[leaf]) for leaf in leaves}, mode, weighting, missing)
    (draws,) = leaf_draws([mats], leaves, n_boot, np.random.default_rng(seed))
    bounds = _percentiles(_combine(draws, coef), 0.0, 1.0)
    return {k: (float(lo), float(hi)) for k, (lo, hi) in zip(nodes, bounds)}


def paired_deltas(records_a: Sequence[Mapping[str, Any]], records_b: Sequence[Mapping[str, Any]], mode: str,
                  weighting: str = tx.DEFAULT_WEIGHTING, missing: Iterable[str] = (), n_boot: int = N_BOOT,
                  seed: int = SEED) -> dict[str, dict[str, Any]]:
    """Node key -> ``{"delta": b - a, "ci95": [lo, hi], "significant": bool, "n": paired records}`` over the
    records both evaluated (matched by id); {} when they share none."""
    ta, tb = score_table(records_a), score_table(records_b)
    keys = {leaf: sorted(set(ta[leaf]) & set(tb[leaf])) for leaf in set(ta) & set(tb)}
    keys = {leaf: ks for leaf, ks in keys.items() if ks}
    if not keys:
        return {}
    return matrix_deltas(matrices(ta, keys), matrices(tb, keys), mode, weighting, missing, n_boot, seed)


def matrix_deltas(mats_a: Mapping[str, np.ndarray], mats_b: Mapping[str, np.ndarray], mode: str,
                  weighting: str = tx.DEFAULT_WEIGHTING, missing: Iterable[str] = (), n_boot: int = N_BOOT,
                  seed: int = SEED) -> dict[str, dict[str, Any]]:
    """:func:`paired_deltas` from aligned leaf -> (records, passes) arrays of the two models."""
    leaves = sorted(mats_a)
    counts = np.array([len(mats_a[leaf]) for leaf in leaves])
    nodes, coef = coefficients(leaves, dict(zip(leaves, counts.tolist())), mode, weighting, missing)
    da, db = leaf_draws([mats_a, mats_b], leaves, n_boot, np.random.default_rng(seed))
    point = coef @ np.array([mats_b[leaf].mean() - mats_a[leaf].mean() for leaf in leaves])
    n_node = (coef != 0) @ counts
    out = {}
    for k, d, (lo, hi), n in zip(nodes, point, _percentiles(_combine(db - da, coef), -1.0, 1.0), n_node):
        out[k] = {"delta": float(d), "ci95": [float(lo), float(hi)], "significant": bool(lo > 0 or hi < 0),
                  "n": int(n)}
    return out


def resolvable(deltas: Mapping[str, Mapping[str, Any]], key: str = "") -> float | None:
    """The smallest |delta| of node ``key`` that this benchmark's size can call significant: the half-width of
    its paired 95% interval (a delta at least that far from 0 excludes 0 from an interval of that width)."""
    found = deltas.get(key)
    if not found:
        return None
    lo, hi = found["ci95"]
    return (hi - lo) / 2


def half_width(interval: Sequence[float] | None) -> float | None:
    return None if not interval else (interval[1] - interval[0]) / 2
