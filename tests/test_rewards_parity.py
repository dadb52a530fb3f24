"""Parity of ``rewards.score`` with the benchmark's reference scorer (lmms-eval 0.7.3 rule_metrics).

For every deterministic metric, >= 1000 generated responses (well-formed, near misses, fenced JSON, extra
text, wrong lengths, NaN/huge values, truncation) are scored by both. What the reference's
``process_results`` would record is the target: its score, or 0 where the reference raises. Two kinds of
case are not compared, and are counted: the reference guessing a random MCQ letter (ours must then report
no parsed letter and score 0), and the reference clipping a NaN action score to 1.0 (ours must score 0).
"""

from __future__ import annotations

import collections
import math
import random

import fixtures_rewards as fx
import pytest

from rewards import score

N_CASES = {"multichoiceeval": 1700, "affmask": 1700}


@pytest.fixture(scope="module")
def reference():
    path = fx.reference_dir()
    if path is None:
        pytest.fail("lmms-eval 0.7.3 is not installed: run scripts/bootstrap.sh (pip install --no-deps lmms-eval==0.7.3)")
    ref = fx.Reference(path)
    yield ref
    ref.close()


def _cases(metric: str) -> list:
    rng = random.Random(f"parity-{metric}")
    n = N_CASES.get(metric, 1300)
    if metric == "affmask":
        return fx.affmask_cases(rng, n, fx.png_masks())
    return fx.GENERATORS[metric](rng, n)


def _nan_components(result) -> bool:
    return any(isinstance(v, float) and math.isnan(v) for v in result.get("scores", {}).values())


@pytest.mark.parametrize("metric", ["multichoiceeval", "meanrelativeacc", "judge", "gravityeval", "agenticnaveval",
                                    "manipulateeval", "cogmapeval", "affmask"])
def test_parity_with_reference(reference, metric):
    if metric == "affmask":
        pytest.importorskip("cv2", reason="the reference decodes masks with OpenCV (pip install opencv-python-headless)")
    counts = collections.Counter()
    mismatches = []
    for response, answer, extra in _cases(metric):
        ref_score, status, raw = reference.score(metric, response, answer, extra)
        ours = score(metric, response, answer, extra)
        assert math.isfinite(ours["score"]) and 0.0 <= ours["score"] <= 1.0
        if status == "random":
            counts["skipped: reference guessed a letter"] += 1
            if not ours["details"].get("unparsed") or ours["score"] != 0.0:
                mismatches.append(("ours parsed a letter where the reference guessed", response, answer, ours))
            continue
        if status == "ok" and _nan_components(raw):
            counts["reference NaN clipped to 1 (ours 0)"] += 1
            if ours["score"] != 0.0 or not ours["details"].get("nonfinite"):
                mismatches.append(("NaN action score", response, ours))
            continue
        counts["compared, reference raised (scores 0)" if status == "error" else "compared"] += 1
        if not abs(ref_score - ours["score"]) <= 1e-6:
            mismatches.append((status, response, answer, extra, ref_score, ours))
    compared = counts["compared"] + counts["compared, reference raised (scores 0)"]
    print(f"\n{metric}: {dict(counts)}")
    assert not mismatches, f"{len(mismatches)} differences, first: {mismatches[:3]}"
    assert compared >= 1000, dict(counts)
    assert counts["compared"] >= 700, dict(counts)  # most cases exercise the reference's real scoring path
