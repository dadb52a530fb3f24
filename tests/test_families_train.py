"""The model-family matrix, training layer: every family other than the paper's (whose rows are the existing
tests: test_sft_learning, test_sft_lora, test_grpo_train, test_sft_resume), through the real launch paths.

Per family: SFT learns (held-out accuracy on a 4-colour question from 0-ish to >= 0.8, chance 0.25); LoRA on the
language model merges into a checkpoint plain transformers loads; 2 GRPO steps with per-level telemetry and a
loadable final model. For tiny-qwen3-vl: SIGKILL mid-training, then resume, gives bit-identical weights.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_families import NAMES
from fixtures_grpo import shared_rl_standin
from PIL import Image
from safetensors.torch import load_file

from data_mix.sample import Sample

REPO = Path(__file__).resolve().parents[1]
OTHERS = [n for n in NAMES if n != "tiny-qwen2.5-vl"]  # the paper's family has its own tests (module doc)
pytestmark = pytest.mark.slow

COLORS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (40, 60, 220), "yellow": (230, 220, 40)}


def colour_samples(root: Path, n: int, seed: int) -> list[Sample]:
    """Solid squares of one of four colours (each channel jittered by up to 30): "What color is the square?"."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        name = rng.choice(list(COLORS))
        rgb = tuple(max(0, min(255, v + rng.randint(-30, 30))) for v in COLORS[name])
        path = root / f"{seed}_{i}.png"
        Image.new("RGB", (56, 56), rgb).save(path)
        out.append(Sample(id=f"{seed}_{i}", source="colours", images=[str(path)], messages=[
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What color is the square?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": name}]}]))
    return out


def accuracy(model_path: str, held_out: list[Sample]) -> float:
    """Greedy answers (3 new tokens) that start with the right colour."""
    from train.config import ModelConfig
    from train.model_loading import load_model_and_processor
    from train.models import family_for_model

    model, proc = load_model_and_processor(ModelConfig(name_or_path=model_path), device="cpu")
    kwargs = family_for_model(model).chat_template_kwargs(thinking=False)  # Qwen3.5: close its think block
    right = 0
    for s in held_out:
        text = proc.apply_chat_template(s.messages[:1], tokenize=False, add_generation_prompt=True, **kwargs)
        with Image.open(s.images[0]) as im:
            ids = proc(text=[text], images=[im.convert("RGB")], return_tensors="pt")
        gen = model.generate(**ids, max_new_tokens=3, do_sample=False)
        answer = proc.tokenizer.decode(gen[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
        right += answer.strip().startswith(s.messages[1]["content"][0]["text"])
    return right / len(held_out)


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    root = tmp_path_factory.mktemp("colours")
    return colour_samples(root, 256, seed=0), colour_samples(root, 40, seed=1)


@pytest.mark.parametrize("name", OTHERS)
def test_sft_learns_held_out_colours(name, colours, tmp_path):
    from train.data import ListSource
    from train.recipe import load_recipe
    from train.sft import run

    torch.set_num_threads(1)
    train, held_out = colours
    out = tmp_path / "run"
    recipe = load_recipe(None, [f"model.name_or_path={name}", f"train.output_dir={out}", "train.max_steps=30",
                                "train.per_device_batch_size=8", "optim.lr=2e-3", "optim.warmup_ratio=0.1",
                                "train.save_steps=0", "eval.bench=null", "data.decontaminate=off", "train.report_to=[jsonl]",
                                "train.num_threads=1", "train.logging_steps=5"])
    assert recipe.model.freeze.vision  # the vision tower stays frozen (the recipes' default)
    assert run(recipe, [], source=ListSource(train, epochs=2)) == 0
    before, after = accuracy(name, held_out), accuracy(str(out), held_out)
    assert before <= 0.4 and after >= 0.8, (before, after)


@pytest.mark.parametrize("name", OTHERS)
def test_lora_merges_into_a_checkpoint_plain_transformers_loads(name, tmp_path):
    from sft_child import train_zoo
    from transformers import AutoModelForImageTextToText

    from train.model_loading import resolve_model_path
    from train.models import family_for_type
    from train.module_groups import group_of

    torch.set_num_threads(1)
    out = tmp_path / "run"
    assert train_zoo(out, tmp_path / "zoo", [f"model.name_or_path={name}", "train.max_steps=2", "train.save_steps=0",
                                             "model.lora.enabled=true", "model.lora.r=4", "model.lora.alpha=8",
                                             "model.lora.dropout=0.0"]) == 0
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert "language_model" in adapter["target_modules"]
    merged = AutoModelForImageTextToText.from_pretrained(out)  # plain transformers, no peft
    start = AutoModelForImageTextToText.from_pretrained(resolve_model_path(name))
    assert type(merged) is type(start) and not any("lora" in n for n, _ in merged.named_parameters())
    groups = family_for_type(merged.config.model_type).groups
    a, b = dict(start.named_parameters()), dict(merged.named_parameters())
    assert a.keys() == b.keys()
    by_group: dict[str, list[bool]] = {"vision": [], "projector": [], "llm": []}
    for n in a:
        by_group[group_of(n, groups)].append(torch.equal(a[n], b[n]))
    assert all(by_group["vision"])  # frozen tower, no adapters there
    assert not all(by_group["projector"])  # trained whole (modules_to_save)
    q_proj = [n for n in a if "layers.0.self_attn.q_proj.weight" in n and group_of(n, groups) == "llm"]
    assert q_proj and not torch.equal(a[q_proj[0]], b[q_proj[0]])  # the adapter merged into the weight


@pytest.fixture(scope="module")
def rl_standin(tmp_path_factory) -> Path:
    return shared_rl_standin(tmp_path_factory)


@pytest.mark.parametrize("name", OTHERS)
def test_two_grpo_steps_with_per_level_telemetry(name, rl_standin, tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, str(REPO / "launch" / "grpo.py"), "recipe=auto_think", f"model.name_or_path={name}",
           f"data.root={rl_standin}", "train.max_steps=2", f"train.output_dir={out}", "eval.bench=null", "data.decontaminate=off",
           "grpo.max_completion_length=8", "train.per_device_batch_size=8", "grpo.num_generations=4",
           "train.grad_accum=1", "train.logging_steps=1", "train.num_threads=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if '"train/reward"' in x]
    assert [r["step"] for r in rows] == [1, 2]
    levels = {lv for r in rows for lv in ("L1", "L2", "L3", "L4") if f"train/{lv}/reward" in r}
    assert levels
    for r in rows:
        for lv in levels & {lv for lv in ("L1", "L2", "L3", "L4") if f"train/{lv}/reward" in r}:
            for key in ("completion_length", "think_fraction", "rewards/accuracy", "rewards/format"):
                assert f"train/{lv}/{key}" in r, (lv, key)
    config = json.loads((out / "config.json").read_text())
    from fixtures_families import MODEL_TYPE

    assert config["model_type"] == MODEL_TYPE[name] and (out / "model.safetensors").is_file()


# ---------------------------------------------------------------------------------------------- resume

RESUME_MODEL = "tiny-qwen3-vl"


def test_sigkill_then_resume_is_bit_identical_for_qwen3_vl(tmp_path):
    from sft_child import train_zoo
    from test_sft_resume import assert_same_weights, start_child, wait_for

    from train import checkpoint as ckpt

    torch.set_num_threads(1)
    zoo = tmp_path / "zoo"
    reference = tmp_path / "ref"
    assert train_zoo(reference, zoo, [f"model.name_or_path={RESUME_MODEL}"]) == 0
    out = tmp_path / "run"
    proc = start_child(out, zoo, f"model.name_or_path={RESUME_MODEL}")
    wait_for(lambda: ckpt.is_complete(out / "checkpoint-4"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "model.safetensors").exists(), "the child finished before it was killed"
    latest = ckpt.latest_complete(out)
    assert latest is not None
    assert train_zoo(out, zoo, [f"model.name_or_path={RESUME_MODEL}", "train.resume=auto"]) == 0
    assert json.loads((out / "train_summary.json").read_text())["resumed_from"] == str(latest)
    assert json.loads((out / "config.json").read_text())["model_type"] == "qwen3_vl"
    assert_same_weights(out, reference)
    assert load_file(str(out / "model.safetensors")).keys()
