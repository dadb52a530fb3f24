"""eval_hooks/intervals.py: the 95% intervals cover the true value about 95% of the time.

Simulated evaluations with a known truth: every leaf of the SpatialTree has records whose success probability
is drawn from a Beta distribution (the record population); a pass scores each record 0/1 with that probability
(sampled generation). The true score of a node is the weighted tree over the leaves' population means; the
true delta of two models is known the same way. Over several hundred simulated benchmarks the intervals must
cover the truth 93-97% of the time.
"""

from __future__ import annotations

import numpy as np
import pytest

from eval_hooks import intervals as iv
from eval_hooks.tree import aggregate_records
from rewards import taxonomy as tx

LEAVES = [leaf.key for leaf in tx.leaves()]
PER_LEAF = 30
SIMS = 600


def _population(rng, shift=0.0):
    """Per leaf (a, b) of the Beta distribution of record success probabilities, and its mean."""
    means = np.clip(rng.uniform(0.2, 0.8, len(LEAVES)) + shift, 0.05, 0.95)
    conc = 4.0
    return means * conc, (1 - means) * conc, means


def _records(p: np.ndarray, passes: int, rng, prefix="r") -> list[dict]:
    """Records (id, leaf, score, repeat) for record probabilities ``p`` (leaves x PER_LEAF)."""
    scores = rng.random((passes,) + p.shape) < p
    return [{"id": f"{prefix}{i}_{j}", "where": "", "leaf": LEAVES[i], "score": float(scores[r, i, j]), "repeat": r}
            for r in range(passes) for i in range(p.shape[0]) for j in range(p.shape[1])]


def _truth(means: np.ndarray, mode="reference", weighting="paper_table") -> dict[str, float]:
    return tx.aggregate_nodes(dict(zip(LEAVES, means)), {k: PER_LEAF for k in LEAVES}, mode=mode,
                              weighting=weighting).scores


def _passes(p: np.ndarray, passes: int, rng) -> dict[str, np.ndarray]:
    """leaf -> (records, passes) 0/1 scores for record probabilities ``p`` (leaves x PER_LEAF)."""
    scores = (rng.random(p.shape + (passes,)) < p[..., None]).astype(float)
    return dict(zip(LEAVES, scores))


def test_score_interval_coverage_one_pass():
    rng = np.random.default_rng(1)
    a, b, means = _population(rng)
    truth = _truth(means)
    hit = {"": 0, "L1": 0, "L3/Caus. Reas.": 0}
    for sim in range(SIMS):
        p = rng.beta(a[:, None], b[:, None], size=(len(LEAVES), PER_LEAF))
        ci = iv.matrix_intervals(_passes(p, 1, rng), "reference", "paper_table", n_boot=500, seed=sim)
        for k in hit:
            hit[k] += ci[k][0] <= truth[k] <= ci[k][1]
    cover = {k: v / SIMS for k, v in hit.items()}
    print(f"score coverage {cover}")
    assert all(0.93 <= c <= 0.97 for c in cover.values()), cover


def _power_mean(a, b, gamma):
    """E[p ** gamma] for p ~ Beta(a, b): B(a + gamma, b) / B(a, b)."""
    from scipy.special import betaln

    return np.exp(betaln(a + gamma, b) - betaln(a, b))


def test_paired_delta_coverage_three_passes():
    """Two models on the same records (B's record probability = A's ** gamma, per leaf: correlated, with a known
    mean): the paired interval of the delta covers the true delta; bootstrapping the records of one pass
    while scoring three (ignoring the pass-to-pass noise) would not be the claim tested here."""
    rng = np.random.default_rng(2)
    a, b, means = _population(rng)
    gamma = rng.uniform(0.8, 1.2, len(LEAVES))
    true_delta = _truth(_power_mean(a, b, gamma))[""] - _truth(means)[""]
    hit, widths = 0, []
    for sim in range(SIMS):
        pa = rng.beta(a[:, None], b[:, None], size=(len(LEAVES), PER_LEAF))
        pb = pa ** gamma[:, None]
        d = iv.matrix_deltas(_passes(pa, 3, rng), _passes(pb, 3, rng), "reference", "paper_table", n_boot=500,
                             seed=sim)[""]
        hit += d["ci95"][0] <= true_delta <= d["ci95"][1]
        widths.append(d["ci95"][1] - d["ci95"][0])
    print(f"paired delta coverage {hit / SIMS:.4f}")
    assert 0.93 <= hit / SIMS <= 0.97, hit / SIMS
    assert np.median(widths) < 0.06, np.median(widths)  # 810 paired records x 3 passes resolve a few points


def test_point_scores_match_the_tree_and_intervals_hold_them():
    rng = np.random.default_rng(3)
    p = rng.uniform(0, 1, (len(LEAVES), 5))
    records = _records(p, 3, rng)
    means = iv.mean_records(records)
    assert len(means) == len(LEAVES) * 5
    agg = aggregate_records(means, "renormalize", "lmms_eval")
    ci = iv.node_intervals(records, "renormalize", "lmms_eval")
    assert set(ci) == {k for k, v in agg.scores.items() if v is not None}
    for k, (lo, hi) in ci.items():
        assert lo <= agg.scores[k] + 1e-9 and agg.scores[k] - 1e-9 <= hi
    assert ci[""][0] < agg.overall < ci[""][1]


def test_identical_models_are_not_significant_and_a_big_gap_is():
    rng = np.random.default_rng(4)
    p = rng.uniform(0.2, 0.6, (len(LEAVES), 20))
    ra = _records(p, 1, rng)
    same = iv.paired_deltas(ra, ra, "reference", "paper_table")
    assert same[""]["delta"] == 0 and same[""]["ci95"] == [0.0, 0.0] and not same[""]["significant"]
    rb = _records(np.clip(p + 0.3, 0, 1), 1, rng)
    gap = iv.paired_deltas(ra, rb, "reference", "paper_table")
    assert gap[""]["significant"] and gap[""]["ci95"][0] > 0.15
    assert gap[""]["n"] == len(LEAVES) * 20
    assert iv.resolvable(gap) == pytest.approx((gap[""]["ci95"][1] - gap[""]["ci95"][0]) / 2)
    # records matched by id: a model evaluated on other records shares nothing
    assert iv.paired_deltas(ra, _records(p, 1, rng, prefix="other"), "reference", "paper_table") == {}
