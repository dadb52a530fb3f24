"""A metric is one record (rewards/metrics/record.py): scoring, shaping, GRPO routing, bench prompts and the
open-MCQ rule read it; no module names a metric to decide what to do with it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from rewards import metrics
from rewards.metrics.record import Metric

REPO = Path(__file__).resolve().parents[1]


def test_no_code_branches_on_a_metric_name():
    found = []
    for top in ("rewards", "train", "data_mix", "eval_hooks"):
        for path in (REPO / top).rglob("*.py"):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if re.search(r"""[=!]= ?["'](gpteval|multichoiceeval|meanrelativeacc)["']|MCQ_METRICS""", line):
                    found.append(f"{path.relative_to(REPO)}:{i}: {line.strip()}")
    assert found == []


def test_records_cover_the_benchmark_metrics():
    assert set(metrics.REGISTRY) == {"multichoiceeval", "meanrelativeacc", "gravityeval", "agenticnaveval",
                                     "manipulateeval", "cogmapeval", "judge", "affmask", "gpteval"}
    assert [n for n, m in metrics.REGISTRY.items() if m.needs_judge] == ["gpteval"]
    assert [n for n, m in metrics.REGISTRY.items() if m.is_mcq] == ["multichoiceeval"]
    assert set(metrics.DETERMINISTIC) == set(metrics.REGISTRY) - {"gpteval"}


def test_the_open_mcq_rule_is_one_rule_for_reader_and_scorer():
    from rewards.scoring import resolve_record

    assert metrics.resolve("multichoiceeval", "open", ["A. 1"]) == ("meanrelativeacc", {})
    assert metrics.resolve("multichoiceeval", "mc", ["A. 1", "B. 2"]) == ("multichoiceeval", {"option": ["A. 1", "B. 2"]})
    assert metrics.resolve("gravityeval", "open", []) == ("gravityeval", {})
    record = {"extra_info": '{"metricfunc": "multichoiceeval"}', "question_type": "open", "hint": '{"k": 1}'}
    assert resolve_record(record) == ("meanrelativeacc", {"k": 1})


def test_bench_prompts_come_from_the_records():
    from data_mix.readers.bench_prompts import bench_prompt

    mcq = bench_prompt("Which?", ["A. x", "B. y"], "multichoiceeval", "L2")
    assert mcq == ("Which?\nOptions : A. x\nB. y\nChoose the correct option. Return only the letter of the correct "
                   "option (e.g., A, B, C, etc.). Always return in this format: 'answer: X'")
    assert bench_prompt("Which?", ["A. x"], "multichoiceeval", "L4").startswith("Which? \n Options : A. x\nSelect")
    assert bench_prompt("Which?", [], "multichoiceeval", "L2") == "Which? "
    assert bench_prompt("How far?", [], "meanrelativeacc", "L1").startswith("How far? Do not response anything")
    assert bench_prompt("Yes?", [], "judge", "L1") == "Yes?"
    assert bench_prompt("Caption", [], "gpteval", "L3") == "Caption "
    assert bench_prompt("Q", [], "not_a_metric", None) == "Q "


def test_a_new_judged_metric_is_routed_by_its_record(monkeypatch):
    """Adding a metric is adding a record: a judged one gets the judge in scoring and the NoJudge refusal in
    shaping without any other code naming it."""
    from rewards.scoring import score
    from rewards.shaping import NoJudge, Shaper

    def graded(response, answer, extra, judge=None):
        return {"score": float(judge([{"role": "user", "content": response}])), "details": {}}

    monkeypatch.setitem(metrics.REGISTRY, "newjudged", Metric("newjudged", graded, needs_judge=True))
    monkeypatch.setitem(metrics.METRICS, "newjudged", graded)
    assert score("newjudged", "x", "y", judge=lambda messages: "0.25")["score"] == 0.25
    from rewards.config import RewardConfig

    shaper = Shaper(RewardConfig(length_unit="words"))
    with pytest.raises(NoJudge):
        shaper.breakdown("<answer>x</answer>", metricfunc="newjudged", answer="y")
    assert shaper.breakdown("<answer>x</answer>", metricfunc="newjudged", answer="y",
                            judge=lambda m: "1")["accuracy"] == 1.0
