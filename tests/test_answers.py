"""A record's metric and reference answer checked before anything is scored (rewards/answers.py): an unusable
record is a bad record named by the caller, and the evaluation subset leaves it out as ``unscorable``, never 0."""

from __future__ import annotations

import pytest

from rewards.answers import answer_problem

MCQ = {"option": ["A. red", "B. blue"]}


@pytest.mark.parametrize("metric, answer, extra, expect", [
    ("multichoiceeval", "A", MCQ, None),
    ("multichoiceeval", "C", MCQ, "not one of the options' letters A, B"),
    ("multichoiceeval", None, MCQ, "answer is null"),
    ("multichoiceeval", {"x": 1}, MCQ, "answer is a dict"),
    ("multichoiceeval", "A", {}, "without options"),
    ("frobnicateeval", "A", MCQ, "unknown metricfunc 'frobnicateeval'"),
    (None, "A", MCQ, "no metricfunc"),
    ("judge", "Yes", {}, None),
    ("judge", "maybe", {}, "not yes or no"),
    ("meanrelativeacc", "3.5", {}, None),
    ("meanrelativeacc", "far", {}, "not a number"),
    ("meanrelativeacc", "nan", {}, "not a finite number"),
    ("gravityeval", '{"roll": 1, "pitch": 2, "vfov": 60}', {}, None),
    ("gravityeval", '{"roll": 1}', {}, "roll, pitch and vfov"),
    ("cogmapeval", "B", {}, None),
    ("cogmapeval", "b)", {}, "not an option letter"),
    ("gpteval", "the camera pans left", {}, None),
    ("gpteval", "  ", {}, "not a non-empty text"),
    ("agenticnaveval", {"actions": ["W"], "step_nums": [1]}, {}, None),
    ("multichoiceeval", True, MCQ, "boolean"),
])
def test_answer_problem(metric, answer, extra, expect):
    problem = answer_problem(metric, answer, extra)
    if expect is None:
        assert problem is None
    else:
        assert problem is not None and expect in problem, problem


def test_the_evaluation_subset_leaves_unscorable_records_out_and_counts_them():
    from data_mix.sample import Sample
    from eval_hooks.subset import select_subset

    def sample(i, **kw):
        base = dict(id=f"r{i}", source="b", messages=[], leaf="Distance", metricfunc="multichoiceeval", answer="A",
                    metric_extra=MCQ, file="b.jsonl", row=i)
        return Sample(**{**base, **kw})

    pool = [sample(0), sample(1, metricfunc="frobnicateeval"), sample(2, answer="D"), sample(3, answer=None)]
    subset = select_subset(pool, max_per_leaf=0, seed=0)
    assert [s.id for s in subset.samples] == ["r0"] and subset.skipped == {"unscorable": 3}
