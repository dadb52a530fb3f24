"""eval.answer_extraction: a GRPO-format response is scored on its answer, as GRPO's accuracy reward scores it.

Unit level (no model is trained). The evaluator test runs the offline path (recipe loader, launcher CLI,
bench reader, subset, scoring, files, metrics) with generation replaced by fixed responses: an untrained
tiny model cannot be made to answer in the think/answer format; real generation is covered by
tests/test_eval_hooks.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from data_mix.sample import Sample
from eval_hooks.scoring import score_response, text_to_score
from eval_hooks.tree import format_compare
from rewards import parse_completion, score
from rewards.shaping import accuracy

REPO = Path(__file__).resolve().parents[1]
OPTIONS = ["the red box", "the blue sphere", "the green cylinder"]


def _mcq(answer: str = "B") -> Sample:
    return Sample(id="m", source="b", messages=[], leaf=None, metricfunc="multichoiceeval", answer=answer,
                  metric_extra={"option": OPTIONS})


def _num(answer: str = "4") -> Sample:
    return Sample(id="n", source="b", messages=[], leaf=None, metricfunc="meanrelativeacc", answer=answer,
                  metric_extra={})


TAGGED = [  # (sample, response, score with auto, score with none)
    (_mcq(), "<think>The answer is A, it looks closer... no, it is farther.</think><answer>B</answer>", 1.0, 0.0),
    (_mcq(), "<think>Option C is correct? The shadow says otherwise.</think>\n<answer>(B)</answer>", 1.0, 0.0),
    (_mcq(), "<think></think><answer>B\n</answer>", 1.0, 0.0),  # stripped as GRPO strips: "B"; raw: no letter
    (_mcq(), "<think>B looks right</think><answer>A</answer>", 0.0, 1.0),  # the answer, not the reasoning, counts
    (_num(), "<think>The room is 12 m long and the table 2 m wide.</think><answer>3.9</answer>", 1.0, 0.0),
    (_num("250"), "<think>about 1,000 mm, i.e. 1 m</think><answer>250</answer>", 1.0, 0.0),
]


@pytest.mark.parametrize("sample,response,auto,none", TAGGED)
def test_the_answer_block_is_scored_with_auto_and_the_raw_text_with_none(sample, response, auto, none):
    got = score_response(sample, response, extraction="auto")
    raw = score_response(sample, response, extraction="none")
    assert (got["score"], raw["score"]) == (pytest.approx(auto), pytest.approx(none))
    assert got["answer_source"] == "answer_tag" and got["scored_text"] == parse_completion(response).answer
    assert raw["answer_source"] == "raw" and raw["scored_text"] == response
    # the same number as GRPO's accuracy reward on the same completion
    grpo = accuracy(sample.metricfunc, parse_completion(response).answer, sample.answer, sample.metric_extra)
    assert got["score"] == pytest.approx(grpo)


def test_a_think_block_without_an_answer_block_is_scored_after_the_think_block():
    response = "<think>The answer is A? No: A is nearer.</think> The answer is B"
    got = score_response(_mcq(), response, extraction="auto")
    assert got["answer_source"] == "after_think" and got["scored_text"] == "The answer is B"
    assert got["score"] == 1.0 and score_response(_mcq(), response, extraction="none")["score"] == 0.0
    grpo = accuracy("multichoiceeval", parse_completion(response).answer, "B", {"option": OPTIONS})
    assert got["score"] == grpo
    # nothing after </think>: the empty answer scores 0 (not the reasoning's "B")
    empty = score_response(_mcq(), "<think>The answer is B</think>", extraction="auto")
    assert (empty["answer_source"], empty["scored_text"], empty["score"]) == ("after_think", "", 0.0)
    # a think block left open (generation cut inside the reasoning): scored raw, as GRPO scores it whole
    cut = score_response(_mcq(), "<think>The answer is B because", extraction="auto")
    assert (cut["answer_source"], cut["score"]) == ("raw", 1.0)


PLAIN = [(_mcq(), r) for r in ("B", "B\n", " B.", "The answer is B.", "(A) or (C)", "I think A", "", "b")]
PLAIN += [(_num(), r) for r in ("3.9", "12 m, or 4", "four", " 4 \n")]


@pytest.mark.parametrize("sample,response", PLAIN)
def test_a_response_without_tags_is_scored_identically_under_both(sample, response):
    auto = score_response(sample, response, extraction="auto")
    none = score_response(sample, response, extraction="none")
    assert auto == none
    assert auto["scored_text"] == response.strip() and auto["answer_source"] == "raw"  # whole reply, stripped
    ref = score(sample.metricfunc, response.strip(), sample.answer, dict(sample.metric_extra))
    assert (auto["score"], auto["details"]) == (ref["score"], ref["details"])


def test_plain_text_is_stripped_as_lmms_eval_strips_it_before_the_metric():
    # lmms-eval's ConfigurableTask.process_results strips a generate_until reply before the task's metric sees
    # it; the letter parser alone finds no letter in "B\n" (tests/test_lmms_eval_run.py runs lmms-eval itself)
    assert score("multichoiceeval", "B\n", "B", dict(_mcq().metric_extra))["score"] == 0.0
    for response in ("B\n", " B", "B"):
        assert score_response(_mcq(), response, extraction="auto")["score"] == 1.0
        assert score_response(_mcq(), response, extraction="none")["score"] == 1.0


def test_unknown_extraction_values_are_rejected(tmp_path):
    from train.recipe import RecipeError, load_recipe

    with pytest.raises(ValueError, match="answer_extraction='raw'"):
        text_to_score("B", "raw")
    assert load_recipe(None).eval.answer_extraction == "auto"
    with pytest.raises(RecipeError, match=r"eval\.answer_extraction='strip' is not one of auto, none"):
        load_recipe(None, ["eval.answer_extraction=strip"])
    proc = subprocess.run([sys.executable, "launch/evaluate.py", "eval.answer_extraction=raw",
                           f"train.output_dir={tmp_path}"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "eval.answer_extraction='raw' is not one of auto, none" in proc.stderr


def test_compare_warns_when_the_extraction_differs():
    from eval_hooks import tree as T

    tree = T.tree_dict(T.aggregate_records([{"leaf": "Distance", "score": 1.0}], "renormalize"))
    a = {"mode": "renormalize", "tree": tree}  # written before the setting existed: raw text
    b = {"mode": "renormalize", "tree": tree, "settings": {"answer_extraction": "auto"}}
    assert "answer extraction differs (A: none, B: auto)" in format_compare(a, b)
    assert "answer extraction" not in format_compare(b, b)


# ---------------------------------------------------------------------------------------------- evaluator

def _bench(path: Path) -> Path:
    def rec(q, answer, metric, leaf, option=(), qtype="mcq"):
        return {"question": q, "option": list(option), "answer": answer, "question_type": qtype, "hint": "{}",
                "extra_info": json.dumps({"metricfunc": metric, "spatree0": "L1", "spatree1": "Geometry",
                                          "spatree2": leaf}), "image": [], "video": [], "video_info": []}

    mcq = ["A. the red box", "B. the blue sphere", "C. the green cylinder"]
    rows = [rec("Which object is farther?", "B", "multichoiceeval", "Distance", mcq),
            rec("Which object is larger?", "C", "multichoiceeval", "Size", mcq),
            rec("How tall is the shelf, in meters?", "4", "meanrelativeacc", "Size", qtype="open"),
            rec("Which shape is round?", "B", "multichoiceeval", "Shape", mcq)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


RESPONSES = {  # by question; one per case: answer block, think without answer, tags nowhere
    "Which object is farther?": "<think>The answer is A? No, A is in front.</think><answer>B</answer>",
    "Which object is larger?": "<think>The answer is A? It is small.</think>The answer is C",
    "How tall is the shelf, in meters?": "<think>12 boxes of 0.3 m each</think><answer>3.9</answer>",
    "Which shape is round?": "B",
}


def _response(sample: Sample) -> str:
    """The fixed response to a bench prompt (the reader appends the benchmark's instructions to the question)."""
    prompt = sample.messages[-1]["content"][-1]["text"]
    return next(r for q, r in RESPONSES.items() if prompt.startswith(q))


def _evaluate(tmp_path: Path, monkeypatch, extraction: str) -> tuple[int, Path]:
    """The offline evaluator through the launchers' CLI (train.cli.main, as launch/evaluate.py calls it)."""
    from eval_hooks import evaluator, offline
    from train.cli import main

    def fixed_responses(model, processor, samples, data_cfg, settings, progress=None):
        assert settings.prompt_template is None and model == "model"
        return [_response(s) for s in samples]

    monkeypatch.setattr(evaluator, "generate", fixed_responses)
    out = tmp_path / extraction
    argv = [f"eval.bench={_bench(tmp_path / 'bench.jsonl')}", f"train.output_dir={out}",
            f"eval.answer_extraction={extraction}"]
    code = main("launch/evaluate.py", argv, lambda recipe, flags: offline.run(
        recipe, flags, loader=lambda cfg, device: ("model", "processor")))
    return code, out / "eval" / "final"


def test_the_offline_evaluator_carries_the_setting_into_scores_files_and_metrics(tmp_path, monkeypatch, caplog):
    code, auto_dir = _evaluate(tmp_path, monkeypatch, "auto")
    assert code == 0
    preds = [json.loads(x) for x in (auto_dir / "predictions.jsonl").read_text().splitlines()]
    by_q = {q: r for q in RESPONSES for r in preds if r["response"] == RESPONSES[q]}  # in RESPONSES order
    assert len(by_q) == 4 and [r["score"] for r in by_q.values()] == [1.0, 1.0, 1.0, 1.0]
    tag, after, num, plain = by_q.values()
    assert (tag["scored_text"], tag["answer_source"]) == ("B", "answer_tag")
    assert (after["scored_text"], after["answer_source"]) == ("The answer is C", "after_think")
    assert num["scored_text"] == "3.9" and "scored_text" not in plain and "answer_source" not in plain
    summary = json.loads((auto_dir / "summary.json").read_text())
    assert summary["settings"]["answer_extraction"] == "auto"
    assert summary["answer_extraction"] == {"mode": "auto", "answer_tag": 2, "after_think": 1, "raw": 1,
                                            "unclosed_think": 0}
    assert summary["overall"] == pytest.approx(1.0)

    with caplog.at_level("WARNING", logger="eval_hooks.evaluator"):
        code, none_dir = _evaluate(tmp_path, monkeypatch, "none")
    assert code == 0
    raw = [json.loads(x) for x in (none_dir / "predictions.jsonl").read_text().splitlines()]
    assert all("scored_text" not in r for r in raw)
    assert {r["response"]: r["score"] for r in raw} == {
        RESPONSES["Which object is farther?"]: 0.0, RESPONSES["Which object is larger?"]: 0.0,
        RESPONSES["How tall is the shelf, in meters?"]: 0.0, "B": 1.0}
    summary = json.loads((none_dir / "summary.json").read_text())
    assert summary["answer_extraction"] == {"mode": "none", "answer_tag": 0, "after_think": 0, "raw": 4,
                                            "unclosed_think": 0, "raw_with_answer_tag": 2}
    assert summary["overall"] < 1.0 and "2 of 4 responses hold an <answer> block" in caplog.text


def test_the_evaluator_logs_the_extracted_fraction(tmp_path, monkeypatch):
    from eval_hooks import evaluator
    from eval_hooks.config import EvalConfig
    from train.recipe import load_recipe

    monkeypatch.setattr(evaluator, "generate", lambda m, p, samples, d, s, progress=None: [
        _response(x) for x in samples])
    data = load_recipe(None).data
    bench = str(_bench(tmp_path / "bench.jsonl"))
    metrics = {}
    for extraction in ("auto", "none"):
        ev = evaluator.BenchEvaluator(EvalConfig(bench=bench, answer_extraction=extraction), data)
        metrics[extraction] = ev.evaluate("model", "processor", tmp_path / extraction, step=3).metrics
    assert metrics["auto"]["bench/answer_extracted_fraction"] == pytest.approx(3 / 4)
    assert metrics["auto"]["bench/answer_after_think_fraction"] == pytest.approx(1 / 4)
    assert metrics["none"]["bench/answer_extracted_fraction"] == 0.0
    assert metrics["auto"]["bench/overall"] > metrics["none"]["bench/overall"]
