"""GRPO reward functions: TRL's calling convention, the modes, the shaping properties, the totals."""

from __future__ import annotations

import json
import types

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import LevelShaping, RewardConfig, make_reward_funcs, reward_weights, total_reward
from rewards.completion import parse_completion

MCQ = {"option": ["A. the red cube", "B. the blue chair", "C. the lamp"]}
THOUGHT = "The chair is drawn larger and lower in the image than the cube, so it is nearer to the camera."
WORDS = {"length_unit": "words"}  # lengths in words: no tokenizer needed (tests/test_rewards_shaping.py: tokens)


def _columns(n, metricfunc="multichoiceeval", answer="B", extra=MCQ, level="L1"):
    return {"metricfunc": [metricfunc] * n, "answer": [answer] * n, "metric_extra": [extra] * n, "level": [level] * n}


def _total(cfg, text, level, **kw):
    return total_reward(text, metricfunc="multichoiceeval", answer="B", metric_extra=MCQ, level=level, cfg=cfg, **kw)


def test_functions_follow_trl_convention():
    cfg = RewardConfig(**WORDS)
    funcs = make_reward_funcs(cfg)
    assert [f.__name__ for f in funcs] == ["accuracy", "format", "length", "reasoning"]
    assert reward_weights(cfg) == [cfg.accuracy_weight, cfg.format_weight, 1.0, 1.0]
    completions = ["<answer>B</answer>", [{"role": "assistant", "content": "<answer>A</answer>"}],
                   [{"role": "assistant", "content": [{"type": "text", "text": "B"}]}], ""]
    cols = _columns(4)
    cols["metric_extra"] = [json.dumps(MCQ), MCQ, MCQ, MCQ]  # dict or JSON text
    extra_kwargs = {"trainer_state": None, "log_extra": lambda *a: None, "log_metric": lambda *a: None,
                    "completion_ids": [[1, 2], [3], [4], []], "image": [None] * 4}
    out = {f.__name__: f(prompts=["q"] * 4, completions=completions, **cols, **extra_kwargs) for f in funcs}
    assert out["accuracy"] == [1.0, 0.0, 1.0, 0.0]
    assert out["format"] == [1.0, 1.0, 1.0, 0.0]  # an empty completion has no answer
    assert all(isinstance(v, float) for vs in out.values() for v in vs)


def test_samples_without_metric_are_not_owned_and_missing_columns_are_named():
    acc, fmt, length, reasoning = make_reward_funcs(RewardConfig(**WORDS))
    cols = _columns(2)
    cols["metricfunc"] = ["multichoiceeval", None]
    assert acc(prompts=["q", "q"], completions=["B", "B"], **cols) == [1.0, None]
    assert reasoning(prompts=["q", "q"], completions=["B", "B"], **cols)[1] is None
    assert fmt(prompts=["q", "q"], completions=["B", "B"], **cols) == [1.0, 1.0]
    with pytest.raises(KeyError, match="metricfunc"):
        acc(prompts=["q"], completions=["B"], answer=["B"])
    with pytest.raises(ValueError, match="not one of L1..L4"):
        length(prompts=["q"], completions=["B"], **_columns(1, level="L9"))


def test_answer_extraction_order():
    assert parse_completion("<think>a</think> x <answer> B </answer>").answer == "B"
    assert parse_completion("<think>a</think>  C ").answer == "C"
    assert parse_completion("just D").answer == "just D"
    assert parse_completion("<answer>A</answer> then <answer>C</answer>").answer == "C"


def test_think_mode_needs_a_think_block():
    cfg = RewardConfig(mode="think")
    fmt = make_reward_funcs(cfg)[1]
    completions = ["<answer>B</answer>", f"<think>{THOUGHT}</think><answer>B</answer>", f"<think>{THOUGHT}</think> B",
                   "<think></think><answer>B</answer>", f"<think>{THOUGHT}<answer>B</answer>",
                   f"<think>{THOUGHT}</think><think>more</think><answer>B</answer>", f"B <think>{THOUGHT}</think>"]
    assert fmt(prompts=["q"] * 7, completions=completions, **_columns(7)) == [0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
    # think mode shapes nothing else: no length penalty, no reasoning bonus
    assert _total(cfg, f"<think>{THOUGHT * 20}</think><answer>B</answer>", "L1")["score"] == pytest.approx(1.1)


def test_auto_think_format_accepts_answering_directly():
    fmt = make_reward_funcs(RewardConfig(mode="auto_think", **WORDS))[1]
    completions = ["B", "<answer>B</answer>", "<think></think>B", f"<think>{THOUGHT}</think><answer>B</answer>",
                   "<think>unclosed B", "<answer>B", "<answer></answer>", "B</think>"]
    assert fmt(prompts=["q"] * 8, completions=completions, **_columns(8)) == [1, 1, 1, 1, 0, 0, 0, 0]


def test_plain_mode_is_accuracy_only():
    cfg = RewardConfig(mode="plain")
    long = f"<think>{THOUGHT * 30}</think><answer>B</answer>"
    assert _total(cfg, long, "L1") == {"accuracy": 1.0, "format": 0.0, "length": 0.0, "reasoning": 0.0, "score": 1.0}


def test_l1_length_penalty_is_linear_between_budget_and_cap():
    cfg = RewardConfig(levels={"L1": LevelShaping(length_free_tokens=10, length_cap_tokens=110, length_penalty=0.5)},
                       **WORDS)
    length = make_reward_funcs(cfg)[2]
    texts = [" ".join(["w"] * n) for n in (10, 60, 110, 500)]
    ids = [[0] * 500] * 4  # TRL's completion_ids do not count: both backends count the text
    assert length(prompts=["q"] * 4, completions=texts, completion_ids=ids, **_columns(4)) == [0.0, -0.25, -0.5, -0.5]
    words = " ".join(["w"] * 60) + " B"  # 61 words
    assert length(prompts=["q"], completions=[words], **_columns(1)) == [pytest.approx(-0.5 * 51 / 100)]
    with pytest.raises(ValueError, match="must exceed"):
        make_reward_funcs(RewardConfig(levels={"L1": LevelShaping(length_free_tokens=50, length_cap_tokens=20)}))


_templates = st.sampled_from(["<think>{w}</think><answer>{a}</answer>", "<think>{w}</think>{a}",
                              "{w} <answer>{a}</answer>", "<think>{w}</think>\n\n<answer>{a}</answer>"])


@settings(max_examples=200, deadline=None)
@given(template=_templates, words=st.lists(st.sampled_from(["the", "cube", "is", "A", "left", "B.", "(C)", "so"]),
                                            max_size=400),
       extra=st.integers(min_value=1, max_value=300), answer=st.sampled_from(["A", "B", "C", "The answer is B"]))
def test_l1_auto_think_longer_never_scores_higher(template, words, extra, answer):
    cfg = RewardConfig(**WORDS)
    short_words = " ".join(words)
    long_words = " ".join(words + ["more"] * extra)
    short, long = template.format(w=short_words, a=answer), template.format(w=long_words, a=answer)
    assert parse_completion(short).answer == parse_completion(long).answer
    assert _total(cfg, long, "L1")["score"] <= _total(cfg, short, "L1")["score"]


def test_l3_rewards_real_reasoning_before_a_correct_answer():
    cfg = RewardConfig(**WORDS)
    bare = _total(cfg, "<answer>B</answer>", "L3")["score"]
    reasoned = _total(cfg, f"<think>{THOUGHT}</think><answer>B</answer>", "L3")
    assert reasoned["score"] > bare
    assert reasoned["reasoning"] == cfg.levels["L3"].reasoning_bonus
    # no bonus for a trivial think block, a wrong answer, or an answer placed inside the think block
    assert _total(cfg, "<think>easy</think><answer>B</answer>", "L3")["score"] == bare
    assert _total(cfg, f"<think>{THOUGHT}</think><answer>A</answer>", "L3")["reasoning"] == 0.0
    assert _total(cfg, f"<think>{THOUGHT} <answer>B</answer></think>", "L3")["reasoning"] == 0.0
    # L1 pays nothing for the same reasoning, L2 is neutral
    assert _total(cfg, f"<think>{THOUGHT}</think><answer>B</answer>", "L1")["reasoning"] == 0.0
    assert _total(cfg, f"<think>{THOUGHT}</think><answer>B</answer>", "L2")["score"] == pytest.approx(1.1)


def test_explicit_zero_coefficients_are_kept():
    cfg = RewardConfig(format_weight=0.0, levels={"L3": LevelShaping(reasoning_bonus=0.0)}, **WORDS)
    assert reward_weights(cfg)[1] == 0.0
    assert _total(cfg, f"<think>{THOUGHT}</think><answer>B</answer>", "L3")["score"] == 1.0


def _trl_trainer_stand_in(funcs, weights):
    """The attributes GRPOTrainer._calculate_rewards reads, so TRL's own code builds the reward kwargs."""
    import torch

    logged = {"extra": {}, "metrics": {}}
    ns = types.SimpleNamespace(
        accelerator=types.SimpleNamespace(device="cpu", is_main_process=True), args=types.SimpleNamespace(report_to=[]),
        state=types.SimpleNamespace(global_step=0), reward_funcs=funcs, reward_processing_classes=[None] * len(funcs),
        reward_func_names=[f.__name__ for f in funcs], environments=None,
        _log_completion_extra=lambda col, vals: logged["extra"].__setitem__(col, vals),
        _log_metric=lambda name, val: logged["metrics"].__setitem__(name, val),
        reward_weights=torch.tensor(weights, dtype=torch.float32))
    return ns, logged


def test_trl_weighted_sum_equals_total_reward():
    torch = pytest.importorskip("torch")
    grpo = pytest.importorskip("trl.trainer.grpo_trainer")
    cfg = RewardConfig(**WORDS)
    funcs = make_reward_funcs(cfg)
    rows = [
        ("multichoiceeval", "B", MCQ, "L1", "<answer>B</answer>"),
        ("multichoiceeval", "B", MCQ, "L1", f"<think>{THOUGHT * 12}</think><answer>B</answer>"),
        ("multichoiceeval", "B", MCQ, "L3", f"<think>{THOUGHT}</think><answer>B</answer>"),
        ("meanrelativeacc", "2.5", {}, "L1", "<answer>2.4</answer>"),
        ("judge", "yes", {}, "L2", "<think>hmm</think> yes"),
        ("gravityeval", json.dumps({"roll": 1, "pitch": 2, "vfov": 60}), {"roll_unc": 1, "pitch_unc": 2, "vfov_unc": 5},
         "L1", '<answer>{"roll": 1.5, "pitch": 2, "vfov": 58}</answer>'),
        (None, "x", None, None, "no metric here"),
    ]
    inputs = [{"prompt": [{"role": "user", "content": "q"}], "metricfunc": m, "answer": a, "metric_extra": e,
               "level": lv, "image": None} for m, a, e, lv, _ in rows]
    completions = [[{"role": "assistant", "content": c}] for *_, c in rows]
    ids = [list(range(len(c[0]["content"]) // 3)) for c in completions]
    ns, logged = _trl_trainer_stand_in(funcs, reward_weights(cfg))
    per_func = grpo.GRPOTrainer._calculate_rewards(ns, inputs, [i["prompt"] for i in inputs], completions, ids)
    trl_total = (per_func * ns.reward_weights.unsqueeze(0)).nansum(dim=1)  # TRL's sum_then_normalize
    for k, (m, a, e, lv, c) in enumerate(rows):
        ours = total_reward(c, metricfunc=m, answer=a, metric_extra=e, level=lv, cfg=cfg)
        assert float(trl_total[k]) == pytest.approx(ours["score"], abs=1e-6)
        for j, name in enumerate(["accuracy", "format", "length", "reasoning"]):
            got = float(per_func[k, j])
            assert (ours[name] is None and torch.isnan(per_func[k, j])) or got == pytest.approx(ours[name], abs=1e-6)
    assert set(logged["metrics"]) == {"accuracy/L1", "accuracy/L2", "accuracy/L3", "accuracy/unscored_fraction"}
    assert logged["metrics"]["accuracy/unscored_fraction"] == pytest.approx(1 / 7)  # the row without a metric
    assert logged["extra"]["level"][2] == "L3"


def test_a_batch_is_parsed_once_for_the_four_functions_and_recognised_by_its_contents(monkeypatch):
    """TRL calls the four functions on one batch; it is parsed once (issue 25: GRPO step cost), and a batch with
    other contents (completions or columns) is scored afresh, whatever list objects carry it."""
    import rewards.grpo as grpo

    parsed = []
    real = grpo.parse_completion
    monkeypatch.setattr(grpo, "parse_completion", lambda text, *opened: parsed.append(text) or real(text, *opened))
    funcs = make_reward_funcs(RewardConfig(**WORDS))
    completions = ["<answer>B</answer>", "<answer>A</answer>"]
    first = [f(prompts=["q"] * 2, completions=completions, **_columns(2)) for f in funcs]
    assert len(parsed) == 2 and first[0] == [1.0, 0.0]
    again = [f(prompts=["q"] * 2, completions=list(completions), **_columns(2)) for f in funcs]
    assert again == first and len(parsed) == 2
    assert funcs[0](prompts=["q"] * 2, completions=completions[::-1], **_columns(2)) == [0.0, 1.0]
    assert funcs[0](prompts=["q"] * 2, completions=completions, **_columns(2, answer="A")) == [0.0, 1.0]
    assert len(parsed) == 6


def test_a_completion_inside_a_think_block_its_prompt_opened_is_read_after_that_block():
    """Qwen3.5 with thinking on: the prompt ends ``<think>\\n``, the completion is the reasoning, ``</think>`` and the
    answer. Read with ``opened`` it is a reasoned answer (format 1, the L3 bonus, lengths of the generated text
    only); read without it, the same text has no think block. A continuation that closes the block empty answers
    without thinking."""
    from train.grpo.telemetry import LevelTelemetry

    cfg = RewardConfig(mode="auto_think", levels={"L3": LevelShaping(reasoning_bonus=0.2)}, **WORDS)
    reasoned = f"{THOUGHT}\n</think>\n\n<answer>B</answer>"
    direct = "\n</think>\n\n<answer>B</answer>"
    cols = _columns(2, level="L3")
    funcs = make_reward_funcs(cfg, opened="<think>\n")
    out = {f.__name__: f(prompts=["q"] * 2, completions=[reasoned, direct], **cols) for f in funcs}
    assert out["accuracy"] == [1.0, 1.0] and out["format"] == [1.0, 1.0]
    assert out["reasoning"] == [0.2, 0.0]
    plain = {f.__name__: f(prompts=["q"] * 2, completions=[reasoned, direct], **cols) for f in make_reward_funcs(cfg)}
    assert plain["reasoning"] == [0.0, 0.0] and plain["format"] == [0.0, 0.0]  # "</think>" without its "<think>"
    assert _total(cfg, reasoned, "L3", opened="<think>\n")["reasoning"] == 0.2

    tel = LevelTelemetry(weights=reward_weights(cfg), eos_token_ids=[], opened="<think>\n")
    wrapped = tel.wrap(funcs)
    completions = [reasoned, direct]
    for f in wrapped:
        f(prompts=["q"] * 2, completions=completions, **cols)
    assert tel.last["L3/think_fraction"] == 0.5 and tel.last["think_fraction"] == 0.5
