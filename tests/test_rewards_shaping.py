"""Shaping options: one length unit on both backends (TRL's reward functions = verl's compute_score), the
reasoning bonus that grows with the think block, per-task overrides (counting filed under L2 Memory shaped like
L1), reward.accuracy=mcq_only, gpteval without a judge. Exact numbers throughout."""

from __future__ import annotations

import dataclasses

import pytest

from rewards import LevelShaping, RewardConfig, TaskShaping, make_reward_funcs, reward_weights, total_reward
from rewards.config import check_reward_config, reward_config_from_dict
from rewards.length import TokenizerMissing
from rewards.shaping import COMPONENTS, NoJudge
from rewards.verl_reward import compute_score

MCQ = {"option": ["A. the red cube", "B. the blue chair"]}
THOUGHT = "The chair is drawn larger and lower in the image than the cube, so it is nearer to the camera."


@pytest.fixture(scope="module")
def tokenizer_dir(tiny_model_dir) -> str:
    return str(tiny_model_dir)


@pytest.fixture(scope="module")
def tokenizer(tokenizer_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tokenizer_dir)


def _trl(cfg, completion, tokenizer=None, **cols):
    """One completion through the TRL reward functions; the weighted sum as TRL forms it (None counts 0)."""
    funcs = make_reward_funcs(cfg, tokenizer=tokenizer)
    columns = {k: [v] for k, v in cols.items()}
    out = {f.__name__: f(prompts=["q"], completions=[[{"role": "assistant", "content": completion}]],
                         completion_ids=[[0] * 999], **columns)[0] for f in funcs}
    out["score"] = sum(w * (out[n] or 0.0) for w, n in zip(reward_weights(cfg), COMPONENTS))
    return out


def _think(n: int, answer: str = "B", word: str = "step") -> str:
    return "<think>" + " ".join([word] * n) + f"</think><answer>{answer}</answer>"


# ---------------------------------------------------------------------------- the length unit

def test_tokens_are_the_policy_tokenizers_tokens_of_the_text_on_both_backends(tokenizer, tokenizer_dir):
    levels = {"L1": LevelShaping(length_free_tokens=2, length_cap_tokens=12, length_penalty=0.5)}
    text = "<answer>B</answer>"
    assert len(tokenizer(text, add_special_tokens=False)["input_ids"]) == 7  # '<' 'answer' '>' 'B' '</' 'answer' '>'
    cols = {"metricfunc": "multichoiceeval", "answer": "B", "metric_extra": MCQ, "level": "L1"}
    tokens = RewardConfig(levels=levels)
    assert tokens.length_unit == "tokens"  # the default
    trl = _trl(tokens, text, tokenizer, **cols)  # completion_ids (999 ids) are not what is counted
    assert trl["length"] == pytest.approx(-0.5 * (7 - 2) / 10)
    verl = compute_score("spatialtree", text, "B", {k: v for k, v in cols.items() if k != "answer"},
                         reward_config=dataclasses.asdict(tokens), tokenizer=tokenizer_dir)
    assert verl["length"] == pytest.approx(-0.25) and verl["score"] == pytest.approx(trl["score"]) == 1.1 - 0.25
    words = RewardConfig(levels=levels, length_unit="words")  # one word: inside the free budget
    assert _trl(words, text, **cols)["length"] == 0.0
    assert compute_score("s", text, "B", {"metricfunc": "multichoiceeval", "metric_extra": MCQ, "level": "L1"},
                         reward_config=dataclasses.asdict(words))["length"] == 0.0
    # tokens without a tokenizer is an error on both backends, never a silent switch to words
    with pytest.raises(TokenizerMissing, match="reward.length_unit=words"):
        make_reward_funcs(tokens)
    with pytest.raises(TokenizerMissing, match="reward_kwargs.tokenizer"):
        compute_score("s", text, "B", {"metricfunc": "multichoiceeval", "level": "L1"},
                      reward_config=dataclasses.asdict(tokens))
    # a config that shapes no length needs no tokenizer
    assert make_reward_funcs(RewardConfig(mode="think"))


SAMPLES = [  # metricfunc, answer, metric_extra, level, leaf, task, completion
    ("multichoiceeval", "B", MCQ, "L1", "Distance", "distance", "<answer>B</answer>"),
    ("multichoiceeval", "B", MCQ, "L1", "Distance", "distance", f"<think>{THOUGHT * 6}</think><answer>B</answer>"),
    ("multichoiceeval", "B", MCQ, "L3", "Route", "route", f"<think>{THOUGHT}</think><answer>B</answer>"),
    ("multichoiceeval", "B", MCQ, "L3", "Route", "route", f"<think>{THOUGHT * 3}</think><answer>B</answer>"),
    ("multichoiceeval", "A", MCQ, "L3", "Route", "route", f"<think>{THOUGHT * 3}</think><answer>B</answer>"),
    ("meanrelativeacc", "3", {}, "L2", "Memory Retrieval", "counting", f"<think>{THOUGHT * 2}</think><answer>3</answer>"),
    ("multichoiceeval", "A", MCQ, "L2", "Memory Retrieval", "memory", f"<think>{THOUGHT * 2}</think>A"),
    ("meanrelativeacc", "3.0", {}, "L4", "Agentic Navigation", None, f"<think>{THOUGHT * 4}</think>about 3.1 m"),
]
SHAPED = dict(
    levels={"L1": LevelShaping(length_free_tokens=8, length_cap_tokens=120, length_penalty=0.4),
            "L3": LevelShaping(reasoning_bonus=0.3, reasoning_bonus_mode="by_length", reasoning_cap_tokens=50),
            "L4": LevelShaping(reasoning_bonus=0.2, think_reward=0.05)},
    tasks={"counting": TaskShaping(like="L1"),
           "Memory Retrieval": TaskShaping(length_free_tokens=4, length_cap_tokens=40, length_penalty=0.3)})


@pytest.mark.parametrize("unit", ["tokens", "words"])
@pytest.mark.parametrize("shaped", [False, True], ids=["defaults", "by_length+tasks"])
def test_trl_reward_functions_and_verl_compute_score_give_the_same_shaped_reward(unit, shaped, tokenizer,
                                                                                  tokenizer_dir):
    cfg = RewardConfig(length_unit=unit, **(SHAPED if shaped else {}))
    kwargs = {"reward_config": dataclasses.asdict(cfg), "tokenizer": tokenizer_dir if unit == "tokens" else None}
    totals = []
    for metricfunc, answer, extra, level, leaf, task, completion in SAMPLES:
        trl = _trl(cfg, completion, tokenizer if unit == "tokens" else None, metricfunc=metricfunc, answer=answer,
                   metric_extra=extra, level=level, leaf=leaf, task=task)
        info = {"metricfunc": metricfunc, "metric_extra": extra, "level": level, "leaf": leaf, "task": task}
        verl = compute_score("spatialtree", completion, answer, info, **kwargs)
        for name in (*COMPONENTS, "score"):
            assert verl[name] == pytest.approx(trl[name], abs=1e-12), (name, completion[:40])
        totals.append(trl["score"])
    # the samples are scored differently (not a comparison of constants); the overrides reach both backends
    assert len({round(t, 9) for t in totals}) >= (7 if shaped else 4)
    assert (totals[5] < 1.1) == shaped  # counting (L2, shaped like L1) pays for its long think block


def test_the_unit_changes_the_numbers(tokenizer):
    """THOUGHT is 20 words and 31 tokens of the embedded tokenizer: the same L1 completion is penalised by unit."""
    text = f"<think>{THOUGHT * 4}</think><answer>B</answer>"
    assert len(text.split()) == 77 and len(tokenizer(text, add_special_tokens=False)["input_ids"]) > 77
    cols = {"metricfunc": "multichoiceeval", "answer": "B", "metric_extra": MCQ, "level": "L1"}
    levels = {"L1": LevelShaping(length_free_tokens=32, length_cap_tokens=256, length_penalty=0.5)}
    words = _trl(RewardConfig(levels=levels, length_unit="words"), text, **cols)["length"]
    tokens = _trl(RewardConfig(levels=levels), text, tokenizer, **cols)["length"]
    assert words == pytest.approx(-0.5 * (77 - 32) / 224) and tokens < words


# ---------------------------------------------------------------------------- the reasoning bonus

def test_by_length_bonus_grows_with_the_think_block_up_to_the_cap_for_correct_answers_only():
    def cfg(mode):
        return RewardConfig(length_unit="words", levels={"L3": LevelShaping(
            reasoning_bonus=0.4, reasoning_bonus_mode=mode, reasoning_cap_tokens=40, min_think_tokens=8)})

    def reasoning(c, text):
        return total_reward(text, metricfunc="multichoiceeval", answer="B", metric_extra=MCQ, level="L3",
                            cfg=c)["reasoning"]

    by_length = cfg("by_length")
    got = [reasoning(by_length, _think(n)) for n in (4, 7, 8, 10, 20, 39, 40, 100)]
    assert got == pytest.approx([0.0, 0.0, 0.08, 0.1, 0.2, 0.39, 0.4, 0.4])  # 0.4 * min(n, 40) / 40 from n >= 8
    assert reasoning(by_length, _think(40, answer="A")) == 0.0  # a wrong answer earns nothing, however long
    assert reasoning(by_length, "<think>" + " ".join(["step"] * 40) + " <answer>B</answer></think>") == 0.0
    once = cfg("once")  # today's one-off bonus, kept as the default
    assert [reasoning(once, _think(n)) for n in (7, 8, 40, 100)] == [0.0, 0.4, 0.4, 0.4]
    assert LevelShaping().reasoning_bonus_mode == "once"
    total = total_reward(_think(20), metricfunc="multichoiceeval", answer="B", metric_extra=MCQ, level="L3",
                         cfg=by_length)
    assert total["score"] == pytest.approx(1.0 + 0.1 + 0.2)


# ---------------------------------------------------------------------------- per-task overrides

def test_counting_filed_under_l2_memory_gets_the_l1_length_penalty_when_the_override_says_so():
    text = _think(144, answer="3", word="one")  # 144 words (tags attached): (144 - 32) / 224 = half the penalty
    assert len(text.split()) == 144

    def score(cfg, task="counting", leaf="Memory Retrieval", level="L2"):
        return total_reward(text, metricfunc="meanrelativeacc", answer="3", level=level, leaf=leaf, task=task, cfg=cfg)

    plain = RewardConfig(length_unit="words")  # default L1: free 32, cap 256, penalty 0.5; L2 neutral
    assert score(plain) == {"accuracy": 1.0, "format": 1.0, "length": 0.0, "reasoning": 0.0, "score": 1.1}
    like_l1 = RewardConfig(length_unit="words", tasks={"counting": TaskShaping(like="L1")})
    assert score(like_l1)["length"] == pytest.approx(-0.25) and score(like_l1)["score"] == pytest.approx(0.85)
    assert score(like_l1, task="memory")["length"] == 0.0  # other L2 Memory samples keep L2's shaping

    leaf_key = {"MemoryRetrieval": TaskShaping(length_free_tokens=0, length_cap_tokens=288, length_penalty=0.3)}
    by_leaf = RewardConfig(length_unit="words", tasks=leaf_key)  # leaf names: spaces and case do not matter
    assert score(by_leaf, task="memory")["length"] == pytest.approx(-0.3 * 144 / 288)
    both = RewardConfig(length_unit="words", tasks={**leaf_key, "counting": TaskShaping(like="L1")})
    assert score(both)["length"] == pytest.approx(-0.25)  # the task type wins over the leaf
    assert score(both, task="memory")["length"] == pytest.approx(-0.15)

    # without `like` an entry starts from the sample's own level and replaces only the fields it gives
    softer = RewardConfig(length_unit="words", tasks={"distance": TaskShaping(length_penalty=0.3)})
    assert score(softer, task="distance", leaf="Distance", level="L1")["length"] == pytest.approx(-0.15)
    off = RewardConfig(length_unit="words", tasks={"distance": TaskShaping(length_penalty=0.0)})
    assert score(off, task="distance", leaf="Distance", level="L1")["length"] == 0.0


# ---------------------------------------------------------------------------- mcq_only and the judge

def test_mcq_only_scores_only_multiple_choice_and_says_so():
    cfg = RewardConfig(accuracy="mcq_only", length_unit="words")
    acc, fmt, length, reasoning = make_reward_funcs(cfg)
    logged = {}
    batch = {"prompts": ["q"] * 3, "completions": ["<answer>B</answer>", "<answer>2.0</answer>", "<answer>A</answer>"],
             "metricfunc": ["multichoiceeval", "meanrelativeacc", "multichoiceeval"], "answer": ["B", "2.0", "B"],
             "metric_extra": [MCQ, {}, MCQ], "level": ["L1", "L1", "L1"],
             "log_metric": lambda k, v: logged.__setitem__(k, v)}
    assert acc(**batch) == [1.0, None, 0.0]  # the exact number answer is not rewarded for accuracy at all
    assert reasoning(**batch) == [0.0, None, 0.0]
    assert fmt(**batch) == [1.0, 1.0, 1.0] and length(**batch) == [0.0, 0.0, 0.0]
    assert logged["accuracy/unscored_fraction"] == pytest.approx(1 / 3) and logged["accuracy/L1"] == 0.5
    assert total_reward("<answer>2.0</answer>", metricfunc="meanrelativeacc", answer="2.0", level="L1",
                        cfg=cfg) == {"accuracy": None, "format": 1.0, "length": 0.0, "reasoning": None,
                                     "score": pytest.approx(0.1)}
    assert total_reward("<answer>2.0</answer>", metricfunc="meanrelativeacc", answer="2.0", level="L1",
                        cfg=RewardConfig(length_unit="words"))["accuracy"] == 1.0
    with pytest.raises(ValueError, match="reward.accuracy=mcq_only scores only MCQ"):
        compute_score("s", "<answer>2.0</answer>", "2.0", {"metricfunc": "meanrelativeacc", "level": "L1"},
                      reward_config=dataclasses.asdict(cfg))


def test_gpteval_without_a_judge_raises_instead_of_scoring_zero():
    batch = {"prompts": ["q"], "completions": ["<answer>pans left</answer>"], "metricfunc": ["gpteval"],
             "answer": ["pan left"], "metric_extra": [{"prompt": "q"}], "level": ["L3"], "leaf": ["Dynamics"]}
    acc = make_reward_funcs(RewardConfig(length_unit="words"))[0]
    with pytest.raises(NoJudge, match=r"leaf Dynamics.*reward.judge"):
        acc(**batch)
    with pytest.raises(NoJudge):
        compute_score("s", "pans left", "pan left", {"metricfunc": "gpteval", "level": "L3"},
                      reward_config={"length_unit": "words"})
    judged = make_reward_funcs(RewardConfig(length_unit="words"), judge=lambda messages: '{"answer_score": 0.75}')[0]
    assert judged(**batch) == [0.75]
    assert make_reward_funcs(RewardConfig(length_unit="words", accuracy="mcq_only"))[0](**batch) == [None]


# ---------------------------------------------------------------------------- config checks

def test_config_errors_name_the_key_the_allowed_values_and_the_closest():
    bad = [
        (RewardConfig(tasks={"counting": TaskShaping(like="L5")}), r"reward.tasks.counting.like='L5' is not one of L1"),
        (RewardConfig(levels={"L3": LevelShaping(reasoning_bonus_mode="bylength")}),
         r"reward.levels.L3.reasoning_bonus_mode='bylength'.*did you mean 'by_length'"),
        (RewardConfig(levels={"L3": LevelShaping(reasoning_bonus_mode="by_length", reasoning_cap_tokens=0)}),
         r"reasoning_cap_tokens must be > 0"),
        (RewardConfig(tasks={"x": TaskShaping(length_free_tokens=300)}), r"reward.tasks.x: length_cap_tokens \(256\)"),
        (RewardConfig(accuracy="mcqonly"), r"reward.accuracy='mcqonly'.*did you mean 'mcq_only'"),
        (RewardConfig(length_unit="auto"), r"counted tokens on TRL and words on verl"),
        (RewardConfig(levels={"L5": LevelShaping()}), r"unknown level 'L5'"),
    ]
    for cfg, pattern in bad:
        with pytest.raises(ValueError, match=pattern):
            check_reward_config(cfg)
    with pytest.raises(ValueError, match=r"unknown key 'reward.tasks.counting.lenght_penalty'; did you mean 'reward.tasks.counting.length_penalty'"):
        reward_config_from_dict({"tasks": {"counting": {"like": "L1", "lenght_penalty": 0.1}}})
    cfg = RewardConfig(accuracy="mcq_only", **SHAPED)
    assert reward_config_from_dict(dataclasses.asdict(cfg)) == cfg  # what verl receives rebuilds the same config


def test_recipe_keys_are_checked_at_load_time():
    from train.recipe import RecipeError, load_recipe

    r = load_recipe("auto_think", ["reward.tasks.counting.like=L1", "reward.levels.L3.reasoning_bonus_mode=by_length",
                                   "reward.accuracy=mcq_only"])
    assert r.reward.tasks["counting"].like == "L1" and r.reward.tasks["counting"].length_penalty is None
    assert r.reward.levels["L3"].reasoning_bonus_mode == "by_length" and r.reward.accuracy == "mcq_only"
    for override, pattern in [("reward.tasks.counting.lenght_penalty=0.2", "did you mean"),
                              ("reward.tasks.counting.like=L7", r"reward.tasks.counting.like='L7'"),
                              ("reward.levels.L3.reasoning_bonus_mode=more", r"reasoning_bonus_mode='more'"),
                              ("reward.accuracy=mcq", r"did you mean 'mcq_only'"),
                              ("reward.length_unit=auto", r"reward.length_unit='auto' is not one of tokens, words")]:
        with pytest.raises(RecipeError, match=pattern):
            load_recipe("auto_think", [override])
