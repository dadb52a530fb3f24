"""The SpatialTree taxonomy: weights, lookups, aggregation."""

from __future__ import annotations

import pytest

from rewards import taxonomy as tx


def test_shape_of_the_tree():
    assert [n.name for n in tx.ROOT.children] == ["L1", "L2", "L3", "L4"]
    assert len(tx.leaves()) == 27
    assert len(tx.abilities()) == 11


def test_weights_match_the_benchmark():
    assert tx.leaf("Distance").weight == 0.65
    assert tx.node("L1/Geometry").weight == 0.5
    assert tx.node("L2/Underst.").weight == 1.0
    assert tx.leaf("Self-Goaling").weight == 0.3


@pytest.mark.parametrize("spelling", ["3D Detection", "3DDetection", "3d detection", " 3D  Detection "])
def test_leaf_lookup_with_or_without_spaces(spelling):
    assert tx.leaf(spelling).key == "L1/Localization/3D Detection"


def test_unknown_leaf_names_closest():
    with pytest.raises(KeyError, match="Distance"):
        tx.leaf("Distanse")


def test_leaf_from_benchmark_tags():
    extra = {"metricfunc": "multichoiceeval", "spatree0": "L1", "spatree1": "Relation", "spatree2": "RelativeDirection"}
    assert tx.leaf_from_tags(extra).key == "L1/Relation/Relative Direction"
    assert tx.leaf_from_tags({"metricfunc": "x"}) is None


def test_reference_mode_counts_missing_leaves_as_zero():
    agg = tx.aggregate({"Distance": 1.0}, mode="reference")
    # Distance weight 0.65 of Geometry (sum 1.0); Geometry 0.5 of L1 (sum 1.0); L1 0.25 of root (sum 1.0)
    assert agg.scores["L1/Geometry"] == pytest.approx(0.65)
    assert agg.scores["L1"] == pytest.approx(0.65 * 0.5)
    assert agg.overall == pytest.approx(0.65 * 0.5 * 0.25)
    assert agg.scores["L2"] == 0.0


def test_renormalize_mode_averages_children_with_samples():
    agg = tx.aggregate({"Distance": 1.0, "Size": 0.0, "Cognitive Map": 0.5}, {"Distance": 3, "Size": 2}, mode="renormalize")
    assert agg.scores["L1/Geometry"] == pytest.approx(0.65 / 0.9)
    assert agg.scores["L1"] == pytest.approx(0.65 / 0.9)
    assert agg.scores["L2"] == pytest.approx(0.5)
    assert agg.scores["L3"] is None
    assert agg.overall == pytest.approx((0.65 / 0.9 + 0.5) / 2)
    assert agg.counts["L1"] == 5 and agg.counts[""] == 6


def test_bad_mode():
    with pytest.raises(ValueError, match="renormalize"):
        tx.aggregate({}, mode="fancy")


def test_taxonomy_imports_nothing_of_the_project():
    import subprocess
    import sys

    # the rewards package may use numpy/scipy (verl's environment has them); nothing of the project, no torch
    code = ("import sys; import rewards.taxonomy; "
            "bad=[m for m in sys.modules if m.split('.')[0] in ('train','data_mix','eval_hooks','torch','transformers')]; "
            "print(bad); sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
