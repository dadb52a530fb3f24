"""GRPO data: prompt templates, the load-time checks (prompt length with image tokens, media, video),
the TRL dataset rows, per-level telemetry and the metrics file names. No training here (fast)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_grpo import grpo_recipe, write_bench_source


@pytest.fixture(scope="module")
def processor(tiny_model_dir):
    from train.config import ModelConfig
    from train.model_loading import load_processor

    proc = load_processor(ModelConfig(name_or_path=str(tiny_model_dir)))
    proc.tokenizer.padding_side = "left"
    return proc


# ---------------------------------------------------------------------------- templates

def test_each_mode_wraps_the_question_and_keeps_image_parts_in_place():
    from data_mix.sample import Sample
    from train.config import PromptTemplates
    from train.grpo.prompts import build_prompt, count_media_parts, question_of, template_for

    s = Sample(id="x", source="s", images=["a.png", "b.png"], messages=[
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which is closer?"},
                                     {"type": "image"}, {"type": "text", "text": "Answer A or B."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A"}]}])
    templates = PromptTemplates()
    texts = {}
    for mode in ("think", "no_think", "auto_think"):
        prompt = build_prompt(s, template_for(templates, mode))
        assert [m["role"] for m in prompt] == ["user"]  # the answer turn is gone
        parts = prompt[0]["content"]
        assert [p["type"] for p in parts] == ["image", "text", "image", "text"]
        assert parts[1]["text"] == "Which is closer?"  # only the last text part is the question
        assert parts[3]["text"].startswith("Answer A or B.\n")
        assert count_media_parts(prompt) == {"image": 2, "video": 0}
        texts[mode] = parts[3]["text"]
    assert "<think>" in texts["think"] and "<answer>" in texts["think"]
    assert "without explaining" in texts["no_think"]
    assert "If the question needs reasoning" in texts["auto_think"]
    assert question_of(s) == "Answer A or B."
    assert s.messages[-1]["role"] == "assistant"  # the sample itself is untouched


def test_a_template_without_the_question_slot_is_refused():
    from train.config import PromptTemplates
    from train.grpo.prompts import PromptError, template_for

    with pytest.raises(PromptError, match=r"grpo.templates.think must contain \{question\}"):
        template_for(PromptTemplates(think="Think hard."), "think")


def test_verl_prompt_marks_images_where_the_parts_were():
    from train.grpo.prompts import to_verl_prompt

    prompt = [{"role": "system", "content": "Be brief."},
              {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}, {"type": "image"}]}]
    assert to_verl_prompt(prompt) == [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "<image>Q?<image>"}]


# ---------------------------------------------------------------------------- load-time checks

def test_prompt_token_count_equals_the_processors_for_one_two_and_three_images(processor, tmp_path):
    from data_mix.media import load_media
    from data_mix.readers import read_source
    from train.grpo.dataset import PromptLengthCounter, check_sample
    from train.grpo.prompts import template_for

    recipe = grpo_recipe(tmp_path, write_bench_source(tmp_path, n=3, sizes=[(56, 56), (112, 84), (224, 224)]))
    counter = PromptLengthCounter(processor)
    assert counter.fast
    template = template_for(recipe.grpo.templates, "think")
    seen_images = set()
    for sample in read_source("mine", recipe.data):
        row = check_sample(sample, template, counter, recipe.data, 10_000)
        images, _ = load_media(sample, recipe.data)
        text = counter.text(row.prompt)
        ids = processor(text=[text], images=images, return_tensors="np")["input_ids"][0]
        assert row.prompt_tokens == len(ids)
        assert row.image_tokens == int((ids == counter.image_token_id).sum())
        seen_images.add(len(images))
    assert seen_images == {1, 2, 3}


def test_a_prompt_whose_image_tokens_would_be_cut_is_rejected_at_load_time_naming_file_and_row(processor, tmp_path):
    from data_mix.badsample import BadSample
    from train.grpo.dataset import load_prompts

    src = write_bench_source(tmp_path, n=3, sizes=[(56, 56), (224, 224), (56, 56)])
    # Row 2 has 2 big images (2 x 64 image tokens); the others have 1-3 small ones (4 each).
    recipe = grpo_recipe(tmp_path, src)
    sizes = sorted(r.prompt_tokens for r in load_prompts(recipe, processor).rows)
    limit = sizes[-1] - 1  # row 2 is the longest; one token less and its last image tokens would be cut
    recipe = grpo_recipe(tmp_path, src, [f"grpo.max_prompt_length={limit}"])
    with pytest.raises(BadSample) as info:
        load_prompts(recipe, processor)
    msg = str(info.value)
    assert info.value.reason == "too_long" and info.value.row == 1
    assert f"{src}, row 2: too_long: prompt is {sizes[-1]} tokens (128 of them image tokens, 2 images)" in msg
    assert f"grpo.max_prompt_length={limit}" in msg

    skipping = grpo_recipe(tmp_path, src, [f"grpo.max_prompt_length={limit}", "data.on_bad_sample=skip",
                                           "data.max_skip_fraction=0.5"])
    loaded = load_prompts(skipping, processor)
    assert len(loaded.rows) == 2 and loaded.skipped.counts == {"too_long": 1}
    assert "too_long: 1" in loaded.summary()


def test_too_long_prompts_stop_the_launcher_before_any_model_is_loaded(processor, tmp_path, capsys):
    """The user path: launch/grpo.py exits 1 with the sample named; no model forward ever runs."""
    from train.grpo import backends

    src = write_bench_source(tmp_path, n=3, sizes=[(56, 56), (224, 224), (56, 56)])
    recipe = grpo_recipe(tmp_path, src, ["grpo.max_prompt_length=200", "train.max_steps=1",
                                         f"train.output_dir={tmp_path / 'run'}"])
    code = backends.run(recipe, [])
    err = capsys.readouterr().err
    assert code == 1
    assert f"{src}, row 2: too_long" in err
    assert "image features and image tokens do not match" not in err
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_missing_image_and_video_samples_are_named(processor, tmp_path):
    from data_mix.badsample import BadSample
    from data_mix.sample import Sample
    from train.grpo.dataset import GRPODataError, PromptLengthCounter, check_sample

    recipe = grpo_recipe(tmp_path, write_bench_source(tmp_path, n=1))
    counter = PromptLengthCounter(processor)
    base = dict(source="mine", file=str(tmp_path / "x.jsonl"), row=4, metricfunc="multichoiceeval", answer="A",
                metric_extra={"option": ["A. left", "B. right"]},
                messages=[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}])
    missing = Sample(id="m", images=[str(tmp_path / "nope.png")], **base)
    with pytest.raises(BadSample) as info:
        check_sample(missing, "{question}", counter, recipe.data, 1000)
    assert info.value.reason == "missing_media" and info.value.row == 4

    video = Sample(id="v", videos=[[str(tmp_path / "f0.png")]], **{**base, "messages": [
        {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}]})
    with pytest.raises(GRPODataError, match=r"x.jsonl:5 \(mine\): has a video, and TRL's GRPOTrainer"):
        check_sample(video, "{question}", counter, recipe.data, 1000)

    no_metric = Sample(id="n", images=[], **{**base, "metricfunc": None, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "Q?"}]}]})
    with pytest.raises(BadSample, match="no metricfunc"):
        check_sample(no_metric, "{question}", counter, recipe.data, 1000)


def test_levels_filter_and_an_empty_selection(processor, tmp_path):
    from train.grpo.dataset import GRPODataError, load_prompts

    src = write_bench_source(tmp_path, n=4, levels=["L1", "L3", "L1", "L4"])
    loaded = load_prompts(grpo_recipe(tmp_path, src, ["grpo.levels=[L1]"]), processor)
    assert [r.sample.level for r in loaded.rows] == ["L1", "L1"] and loaded.filtered_out == 2
    with pytest.raises(GRPODataError, match=r"no usable GRPO prompts with grpo.levels=\['L2'\]"):
        load_prompts(grpo_recipe(tmp_path, src, ["grpo.levels=[L2]"]), processor)


def test_dataset_rows_carry_prompt_images_and_reward_columns(processor, tmp_path):
    from PIL import Image

    from train.grpo.dataset import load_prompts, to_hf_dataset

    src = write_bench_source(tmp_path, n=2, sizes=[(56, 56), (112, 84)])
    recipe = grpo_recipe(tmp_path, src)
    ds = to_hf_dataset(load_prompts(recipe, processor), recipe.data)
    assert len(ds) == 2
    row = next(ds[i] for i in range(2) if ds[i]["where"].endswith("mine.jsonl:2"))
    assert row["prompt"][0]["role"] == "user"
    n_parts = sum(p["type"] == "image" for p in row["prompt"][0]["content"])
    assert n_parts == len(row["images"]) == 2 and all(isinstance(im, Image.Image) for im in row["images"])
    assert row["answer"] == "B" and row["metricfunc"] == "multichoiceeval" and row["level"] == "L1"
    assert row["metric_extra"]["option"] == ["A. the red box", "B. the blue box"]


# ---------------------------------------------------------------------------- telemetry

def test_per_level_statistics_of_a_scored_batch():
    from train.grpo.telemetry import LevelTelemetry

    logged = {}

    def accuracy(prompts, completions, **kw):
        return [1.0, 0.0, 1.0, 1.0]

    def length(prompts, completions, **kw):
        return [-0.5, 0.0, None, 0.0]

    tel = LevelTelemetry(weights=[1.0, 2.0], eos_token_ids=[7])
    funcs = tel.wrap([accuracy, length])
    assert [f.__name__ for f in funcs] == ["accuracy", "length"]
    completions = [[{"role": "assistant", "content": "<think>look closely</think><answer>A</answer>"}],
                   [{"role": "assistant", "content": "<answer>B</answer>"}],
                   [{"role": "assistant", "content": "<think> </think>A"}],
                   [{"role": "assistant", "content": "<think>plan the route</think>C"}]]
    kwargs = dict(level=["L1", "L1", "L3", "L3"], completion_ids=[[1, 2, 3, 7], [1, 7], [1, 2, 3, 4, 5, 6], [1, 7]],
                  log_metric=lambda k, v: logged.__setitem__(k, v))
    for f in funcs:
        f(prompts=[None] * 4, completions=completions, **kwargs)
    assert logged["L1/reward"] == pytest.approx(((1 - 1.0) + 0.0) / 2)
    assert logged["L1/rewards/accuracy"] == 0.5 and logged["L1/rewards/length"] == -0.25
    assert logged["L1/completion_length"] == 3.0 and logged["L1/think_fraction"] == 0.5
    assert logged["L1/truncated_fraction"] == 0.0
    assert logged["L3/reward"] == pytest.approx((1.0 + 1.0) / 2)  # a None component is left out of the sum
    assert logged["L3/rewards/length"] == 0.0  # the mean of the scored ones only
    assert logged["L3/think_fraction"] == 0.5  # an empty think block is not thinking
    assert logged["L3/truncated_fraction"] == 0.5 and logged["think_fraction"] == 0.5


def test_think_fraction_counts_exactly_the_completions_the_reasoning_reward_pays_for():
    """Telemetry and rewards read a completion with the same parser: a think block counts only when it opens the
    completion and is not blank (a late or empty one is neither paid nor counted)."""
    from rewards.completion import parse_completion
    from rewards.config import LevelShaping, RewardConfig
    from rewards.shaping import Shaper
    from train.grpo.telemetry import LevelTelemetry

    texts = ["<think>look closely</think><answer>A</answer>", "A <think>a late thought</think>",
             "<think>  </think><answer>B</answer>", "  <think>plan</think>C", "<answer>D</answer>",
             "<think>never closed <answer>A</answer>"]
    shaper = Shaper(RewardConfig(mode="auto_think", length_unit="words"))
    paid = [shaper.reasoning(LevelShaping(think_reward=1.0), parse_completion(t), None) == 1.0 for t in texts]
    assert paid == [True, False, False, True, False, False]
    tel = LevelTelemetry(weights=[1.0], eos_token_ids=[])
    stats = tel.batch_stats({"r": [0.0] * len(texts)}, [[{"role": "assistant", "content": t}] for t in texts],
                            {"level": ["L1"] * len(texts)})
    assert stats["L1/think_fraction"] == pytest.approx(sum(paid) / len(texts))


def test_metrics_file_uses_the_names_tensorboard_and_wandb_show(tmp_path):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from train.grpo.trl_backend import jsonl_callback

    cb = jsonl_callback(tmp_path / "metrics.jsonl")
    state = TrainerState()
    state.global_step = 3
    cb.on_log(TrainingArguments(output_dir=str(tmp_path), report_to="none"), state, TrainerControl(),
              logs={"loss": 0.5, "L1/reward": 0.25, "rewards/accuracy/mean": 0.5, "eval_x": 1.0})
    rec = json.loads((tmp_path / "metrics.jsonl").read_text())
    assert rec["step"] == 3 and rec["train/loss"] == 0.5 and rec["train/L1/reward"] == 0.25
    assert rec["train/rewards/accuracy/mean"] == 0.5 and rec["eval/x"] == 1.0
    assert cb.writes_metrics_jsonl


# ---------------------------------------------------------------------------- recipes

RL_RECIPES = ("full_think", "l1_think", "l2_think", "l3_think", "l4_think", "full_think_after_sft", "auto_think",
              "auto_think_all_metrics",
              "auto_think_by_length", "quickstart_grpo")


@pytest.mark.parametrize("name", RL_RECIPES)
def test_table3_recipes_resolve_and_agree_on_modes(name):
    """Each recipe: sources, modes and the frozen vision tower as Table 3 says."""
    from train.recipe import load_recipe

    r = load_recipe(name, ["model.name_or_path=tiny-qwen2.5-vl"])
    sources = [s for g in r.mix.groups.values() for s in g.sources]
    assert sources and all(s.startswith("rl_l") for s in sources)
    expected = {"think": "think", "auto_think": "auto_think"}[r.grpo.prompt_mode]
    assert r.reward.mode == expected
    assert r.model.freeze.vision
    level = {"l1_think": ["rl_l1"], "l2_think": ["rl_l2"], "l3_think": ["rl_l3"], "l4_think": ["rl_l4"]}.get(name)
    if level:
        assert sources == level


def test_paths_in_docs_exist(repo_root):
    for rel in ("scripts/verl/setup_env.sh", "scripts/verl/check_config.py", "scripts/verl/score_parquet.py",
                "scripts/verl/slurm_ray.sbatch", "docs/GRPO.md"):
        assert (Path(repo_root) / rel).is_file(), rel


def test_rollout_engine_choice_is_explained():
    from train.config import GRPOConfig
    from train.grpo.trl_backend import pick_generation

    assert pick_generation(GRPOConfig(), "cpu") == (False, "HF generate (no GPU for vLLM)")
    assert pick_generation(GRPOConfig(use_vllm=False), "cuda") == (False, "HF generate (grpo.use_vllm=false)")
    use, why = pick_generation(GRPOConfig(), "cuda")  # vllm is not installed in the test environment
    assert (use, why) == (False, "HF generate (vllm is not installed; docs/GRPO.md 'vLLM' says how to add it)")


def test_a_vllm_built_for_another_torch_is_named():
    """vllm 0.24's metadata pins torch==2.11.0; next to the project's torch 2.14.1 it is refused with the reason
    (issue 27: installing vllm into .venv replaced torch), and an optional extra's pin does not count."""
    from train.grpo.trl_backend import torch_requirement_problem

    requires = ["torch==2.11.0", "torchvision==0.26.0", 'xformers==0.0.33; platform_system == "Linux"',
                'torch>=3; extra == "future"']
    assert torch_requirement_problem(requires, "2.14.1+cu130") == \
        "vllm needs torch==2.11.0, this environment has torch 2.14.1+cu130"
    assert torch_requirement_problem(requires, "2.11.0+cu128") is None
    assert torch_requirement_problem(["numpy"], "2.14.1") is None


@pytest.mark.slow
def test_every_rl_recipe_loads_its_prompts_here(processor, tmp_path_factory):
    """The data side of `launch/grpo.py recipe=NAME model.name_or_path=tiny-qwen2.5-vl data.root=STANDIN`."""
    from fixtures_grpo import shared_rl_standin

    from train.grpo.dataset import GRPODataError, load_prompts
    from train.recipe import load_recipe

    standin = shared_rl_standin(tmp_path_factory)
    for name in RL_RECIPES:
        r = load_recipe(name, ["model.name_or_path=tiny-qwen2.5-vl", f"data.root={standin}"])
        expected = {"l1_think": {"L1"}, "l2_think": {"L2"}, "l3_think": {"L3"}, "l4_think": {"L4"},
                    "quickstart_grpo": {"L1", "L3"}}.get(name, {"L1", "L2", "L3", "L4"})
        if r.reward.accuracy == "mcq_only" and name == "l4_think":
            # the stand-in's L4 prompts are navigation actions (agenticnaveval), none multiple choice: the paper's
            # MCQ-only objective has nothing to train on there (docs/GRPO.md)
            with pytest.raises(GRPODataError, match=r"100 not multiple choice \(reward.accuracy=mcq_only\)"):
                load_prompts(r, processor)
            continue
        loaded = load_prompts(r, processor)
        if r.reward.accuracy == "mcq_only":  # the paper's objective: only multiple-choice prompts, the rest counted
            assert "multichoiceeval" not in loaded.not_mcq, name
            assert sum(loaded.levels.values()) + sum(loaded.not_mcq.values()) == 100 * len(expected), name
            assert set(loaded.levels) <= expected and loaded.skipped.skipped == 0, name
        else:
            assert set(loaded.levels) == expected, name
            assert all(n == 100 for n in loaded.levels.values()) and loaded.skipped.skipped == 0
        assert loaded.max_prompt_tokens <= r.grpo.max_prompt_length
