"""Auto-think on Qwen3.5: the think-format SFT (train/quickstart_rl.py) makes tiny-qwen3.5 think on L3 in GRPO, and
the per-level telemetry counts those think blocks.

Why this needs its own proof: Qwen3.5's template renders an assistant turn as ``<think>\\n{reasoning}\\n</think>\\n\\n``
+ answer. With thinking off, the GRPO prompt closed the block empty (``<think>\\n\\n</think>\\n\\n``), which in SFT was
only ever followed by a bare answer, so the model never thought (``make demo MODEL=tiny-qwen3.5`` at 6e8cf7d: L3 think
fraction 0.00 -> 0.01, ~8-token completions). A prompt that asks for ``<think>`` now renders with thinking on: the
prompt opens ``<think>\\n`` (a prefix of every SFT sample), the completion carries the reasoning and ``</think>``, and
the reward and telemetry read it after the block the prompt opened (``ModelFamily.think_prefix``).
"""

from __future__ import annotations

import dataclasses
import json

import pytest
from fixtures_grpo import shared_think_sft

pytestmark = pytest.mark.slow  # a 40-step SFT and one GRPO step of tiny-qwen3.5 (~80 s on 2 busy cores)

SFT_STEPS = 40  # project choice, for time: the quickstart's 100 steps took 151 s here (L3 think fraction 0.72 at 30)


def _train_row(out) -> dict:
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"train/reward"' in line]
    assert len(rows) == 1
    return rows[0]


def test_think_format_sft_makes_qwen3_5_think_on_l3_and_the_telemetry_counts_it(tmp_path_factory, tmp_path):
    from rewards.completion import parse_completion
    from train.grpo import run
    from train.model_loading import load_processor
    from train.models import family_for_processor
    from train.recipe import load_recipe

    standin, registry, sft_dir = shared_think_sft(tmp_path_factory, "tiny-qwen3.5", SFT_STEPS)
    out = tmp_path / "grpo"
    recipe = load_recipe("quickstart_grpo", [
        f"model.name_or_path={sft_dir}", f"data.root={standin}", f"data.registry={registry}",
        "mix.groups.rl.sources=[learn_l1,learn_l3]", f"train.output_dir={out}", "eval.bench=null",
        "data.decontaminate=off", "train.report_to=[jsonl]", "train.max_steps=1"])
    assert run(recipe, []) == 0
    row = _train_row(out)
    print({k: round(v, 3) for k, v in row.items() if "think" in k or "completion_length" in k})

    processor = load_processor(recipe.model)
    opened = family_for_processor(processor).think_prefix(processor, True)
    assert opened == "<think>\n"  # the prompts opened the native block (thinking on: auto_think asks for <think>)

    # The model thinks on L3 (all 8 L3 prompts x 4 completions in the step): before, with the block closed empty in
    # the prompt, 0.00-0.01 after the full 100-step SFT (0.44 here after 40 steps, 0.84 after 50, 1.0 after 100).
    assert row["train/L3/think_fraction"] >= 0.3
    assert row["train/L3/completion_length"] >= 12  # was ~8 tokens: <answer>X</answer> alone

    # The telemetry counts exactly the completions that carry a think block when read after the open block,
    # and the completions themselves open none (the prompt did): read without it, nothing would count.
    rollouts = [json.loads(line) for line in (out / "rollouts.jsonl").read_text().splitlines()]
    l3 = [r["completion"] for r in rollouts if r["level"] == "L3"]
    assert len(l3) == 32
    thinking = [parse_completion(c, opened).has_think for c in l3]
    assert sum(thinking) / len(thinking) == pytest.approx(row["train/L3/think_fraction"])
    assert not any(parse_completion(c).has_think for c in l3)
    # ... and the reasoning reward paid for them (L3 bonus 0.2 on a correct answer after a think block).
    paid = [r for r in rollouts if r["level"] == "L3" and r["rewards"]["reasoning"] > 0]
    assert all(parse_completion(r["completion"], opened).answer_after_think for r in paid)

    # The same SFT model, greedy, on the 8 L3 GRPO prompts: asked with the auto_think template (thinking on) it
    # thinks; the same prompts rendered with thinking off (the block closed empty, the old rendering) it does not.
    from data_mix.readers import read_source
    from eval_hooks.generation import GenerationSettings, generate
    from train.config import ModelConfig
    from train.grpo.prompts import build_prompt
    from train.model_loading import load_model

    model = load_model(ModelConfig(name_or_path=str(sft_dir)), "cpu")
    samples = list(read_source("learn_l3", recipe.data))
    template = recipe.grpo.templates.auto_think
    on = generate(model, processor, samples, recipe.data, GenerationSettings(max_new_tokens=64, prompt_template=template))
    asked = [dataclasses.replace(s, messages=build_prompt(s, template)) for s in samples]
    off = generate(model, processor, asked, recipe.data, GenerationSettings(max_new_tokens=64))
    print("thinking on:", on[:2], "thinking off:", off[:2])
    assert all(r.startswith(opened) for r in on)  # the evaluation returns the whole assistant turn
    think_on = sum(parse_completion(r).has_think for r in on)
    think_off = sum(parse_completion(r).has_think for r in off)
    assert think_on >= 4 and think_off == 0, (think_on, think_off)
