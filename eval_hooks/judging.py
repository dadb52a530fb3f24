"""Records scored by an LLM judge, and what an evaluation does when no judge is configured (``eval.judge``).

``gpteval`` (free-text motion captions) needs an OpenAI-compatible judge (``reward.judge.base_url``).
Without one, a score of 0 for those records would be silently wrong, so an evaluation whose records include
judged ones stops at start with one line, unless the user opts into ``eval.judge=skip``: the judged records
are then not evaluated, and their leaves are reported missing (no score; in reference mode their ancestors
have none either), never 0.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from eval_hooks.subset import Subset

JUDGE_POLICIES = ("require", "skip")


def judged_metrics() -> frozenset[str]:
    """Metric names that call an LLM judge: every metric of ``rewards`` that is not deterministic."""
    from rewards.metrics import DETERMINISTIC, METRICS

    return frozenset(METRICS) - frozenset(DETERMINISTIC)


class JudgeRequired(ValueError):
    """The evaluation holds judged records and no judge is configured (and ``eval.judge`` is not ``skip``)."""


def judged_per_leaf(subset: Subset) -> dict[str, int]:
    """Leaf key -> number of records of ``subset`` that need the judge."""
    judged = judged_metrics()
    return dict(Counter(k for s, k in zip(subset.samples, subset.leaf_keys) if s.metricfunc in judged))


def apply_judge_policy(subset: Subset, has_judge: bool, policy: str, bench: Any) -> tuple[Subset, dict[str, int]]:
    """``(subset to evaluate, judged records left out per leaf)``; raises :class:`JudgeRequired` when judged
    records have no judge and ``policy`` is ``require``."""
    if policy not in JUDGE_POLICIES:
        raise ValueError(f"eval.judge={policy!r} is not one of {', '.join(JUDGE_POLICIES)}")
    needs = judged_per_leaf(subset)
    if not needs or has_judge:
        return subset, {}
    if policy == "require":
        leaves = ", ".join(f"{k} ({n})" for k, n in sorted(needs.items()))
        raise JudgeRequired(
            f"eval.bench={bench!r}: {sum(needs.values())} records are scored by an LLM judge "
            f"({', '.join(sorted(judged_metrics()))}; leaves: {leaves}) and no judge is configured: set "
            "reward.judge.base_url=URL (an OpenAI-compatible endpoint), or eval.judge=skip to report those leaves "
            "as missing")
    judged = judged_metrics()
    keep = [i for i, s in enumerate(subset.samples) if s.metricfunc not in judged]
    kept = Subset(samples=[subset.samples[i] for i in keep], leaf_keys=[subset.leaf_keys[i] for i in keep],
                  available=subset.available, skipped=subset.skipped)
    return kept, needs
