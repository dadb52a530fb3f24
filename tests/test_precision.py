"""fp32 master weights for trainable parameters loaded in bf16 (train/precision.py, wired in train.run.prepare_model).

The tiny Qwen2.5-VL is loaded in bf16 directly (``pick_dtype`` gives fp32 on CPU; torch does bf16 on CPU with the
same arithmetic as a GPU): AdamW at the SFT recipe's lr 1e-5 on raw bf16 weights loses most of the update, with
the trainable parameters upcast and bf16 autocast (the Trainer's ``bf16=True``) it moves them as far as fp32 does.
"""

from __future__ import annotations

import copy

import pytest
import torch
from fixtures_data import write_image

from bench.gpu_check.c_precision import adam_steps, update_ratio
from train.config import FreezeConfig, LoraConfig, ModelConfig
from train.module_groups import apply_freeze, param_counts
from train.precision import apply_trainable_fp32, decide_trainable_fp32

SFT_LR = 1e-5  # recipes/base/sft_base.yaml (= the schema default optim.lr)


def _load(tiny_model_dir, dtype):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir), dtype=dtype, attn_implementation="sdpa")
    apply_freeze(model, FreezeConfig())  # the recipes' default: vision frozen, projector and LLM trained
    return model


@pytest.fixture(scope="module")
def batch(tiny_model_dir, tmp_path_factory):
    """Two samples through the project's encoder: one with an image (the frozen bf16 tower runs), one text-only."""
    from data_mix.config import DataConfig
    from data_mix.sample import Sample
    from train.collate import SampleEncoder, pad_batch
    from train.model_loading import load_processor

    image = write_image(tmp_path_factory.mktemp("precision") / "red.png", size=(84, 56))
    processor = load_processor(ModelConfig())
    enc = SampleEncoder(processor, DataConfig())
    samples = [
        Sample(id="img", source="t", images=[str(image)], messages=[
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What colour is the box?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "The box is red."}]}]),
        Sample(id="txt", source="t", messages=[
            {"role": "user", "content": [{"type": "text", "text": "Is the cube left of the sphere?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Yes, it is on the left."}]}]),
    ]
    return pad_batch([enc.encode(s) for s in samples], enc.pad_id)


def test_trainable_upcast_frozen_stay_bf16_and_updates_survive(tiny_model_dir, batch):
    m32 = _load(tiny_model_dir, torch.float32)
    m16 = _load(tiny_model_dir, torch.bfloat16)
    ref = adam_steps(copy.deepcopy(m32), batch, "cpu", SFT_LR)  # fp32 weights, no autocast

    fixed = copy.deepcopy(m16)
    upcast = apply_trainable_fp32(fixed, None, torch.bfloat16, None)
    counts = param_counts(fixed)
    assert upcast == sum(c["trainable"] for c in counts.values()) > 0
    assert counts["vision"]["trainable"] == 0 < counts["vision"]["total"]
    for name, p in fixed.named_parameters():
        assert p.dtype == (torch.float32 if p.requires_grad else torch.bfloat16), name
    ratio, lost = update_ratio(adam_steps(fixed, batch, "cpu", SFT_LR, autocast=torch.bfloat16), ref)
    assert 0.8 <= ratio <= 1.25 and lost < 0.01, (ratio, lost)
    assert all(p.dtype == torch.bfloat16 for p in fixed.model.visual.blocks.parameters())  # still frozen, still bf16

    # Without the upcast (same autocast): most of the update is rounded away. This is what the fix is for.
    raw_ratio, raw_lost = update_ratio(adam_steps(copy.deepcopy(m16), batch, "cpu", SFT_LR, autocast=torch.bfloat16),
                                       ref)
    assert raw_ratio < 0.8 and raw_lost > 0.5, (raw_ratio, raw_lost)


@pytest.mark.parametrize("setting, dtype, deepspeed, upcast", [
    (None, torch.bfloat16, None, True),       # auto: a GPU run without DeepSpeed
    (None, torch.float16, None, True),        # fp16 too (the Trainer's GradScaler refuses fp16 gradients)
    (None, torch.bfloat16, "zero2", False),   # DeepSpeed keeps its own fp32 masters
    (None, torch.bfloat16, "zero3", False),
    (None, torch.float32, None, False),       # fp32 weights: nothing to do
    (False, torch.bfloat16, None, False),     # an explicit false wins over auto
    (True, torch.bfloat16, "zero2", True),    # an explicit true wins over the DeepSpeed rule
    (True, torch.float32, None, True),        # asked for; a no-op on fp32 weights
])
def test_decision_table(setting, dtype, deepspeed, upcast):
    decision = decide_trainable_fp32(setting, dtype, deepspeed)
    assert decision.upcast is upcast and "model.trainable_fp32=" in decision.reason


def test_explicit_false_and_deepspeed_leave_bf16_weights_alone(tiny_model_dir):
    m16 = _load(tiny_model_dir, torch.bfloat16)
    assert apply_trainable_fp32(m16, False, torch.bfloat16, None) == 0
    assert apply_trainable_fp32(m16, None, torch.bfloat16, "zero2") == 0
    assert {p.dtype for p in m16.parameters()} == {torch.bfloat16}


def test_lora_adapters_are_fp32_already_a_trained_projector_is_upcast(tiny_model_dir):
    """peft (autocast_adapter_dtype=True by default) casts LoRA A/B to fp32 but not the projector it trains whole
    (modules_to_save): the upcast catches exactly that."""
    from train.lora import wrap_lora

    m16 = _load(tiny_model_dir, torch.bfloat16)
    cfg = ModelConfig(lora=LoraConfig(enabled=True))
    model = wrap_lora(m16, cfg.lora, cfg.freeze)
    apply_freeze(model, cfg.freeze)
    trainable = {n: p for n, p in model.named_parameters() if p.requires_grad}
    lora = {n for n in trainable if "lora_" in n}
    projector = {n for n in trainable if "modules_to_save" in n}
    assert lora and projector and set(trainable) == lora | projector
    assert all(trainable[n].dtype == torch.float32 for n in lora)
    assert all(trainable[n].dtype == torch.bfloat16 for n in projector)  # peft left these in bf16

    upcast = apply_trainable_fp32(model, None, torch.bfloat16, None)
    assert upcast == sum(trainable[n].numel() for n in projector)
    assert all(p.dtype == torch.float32 for p in model.parameters() if p.requires_grad)
    assert all(p.dtype == torch.bfloat16 for n, p in model.named_parameters() if "base_layer" in n)  # frozen base


def test_prepare_model_upcasts_when_the_weights_load_in_bf16(monkeypatch, caplog):
    """The project's one preparation path (SFT and GRPO on TRL): bf16 loading forced, as ``auto`` does on a GPU."""
    import logging

    import train.model_loading
    from train.recipe import load_recipe
    from train.run import prepare_model

    recipe = load_recipe(None, ["train.device=cpu"])
    monkeypatch.setattr(train.model_loading, "pick_dtype", lambda requested, device: torch.bfloat16)
    with caplog.at_level(logging.INFO, logger="train.precision"):
        model, _, counts = prepare_model(recipe, "cpu")
    trainable = sum(c["trainable"] for c in counts.values())
    assert all(p.dtype == (torch.float32 if p.requires_grad else torch.bfloat16) for p in model.parameters())
    assert f"{trainable:,} upcast to fp32" in caplog.text and "no DeepSpeed" in caplog.text

    recipe = load_recipe(None, ["train.device=cpu", "model.trainable_fp32=false"])
    model, _, _ = prepare_model(recipe, "cpu")
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_recipe_key_is_typed():
    from train.recipe import RecipeError, load_recipe

    assert load_recipe(None).model.trainable_fp32 is None
    assert load_recipe(None, ["model.trainable_fp32=true"]).model.trainable_fp32 is True
    with pytest.raises(RecipeError, match="trainable_fp32"):
        load_recipe(None, ["model.trainable_fp32=maybe"])


def test_resume_keeps_fp32_master_weights(tiny_model_dir, tmp_path):
    """SFTTrainer's resume loads the checkpoint in the widest dtype the model holds: fp32 masters saved next to a
    bf16 frozen tower come back exactly, not rounded through bf16."""
    from train.sft_trainer import SFTTrainer

    saved = _load(tiny_model_dir, torch.bfloat16)
    apply_trainable_fp32(saved, None, torch.bfloat16, None)
    torch.manual_seed(0)
    with torch.no_grad():
        for p in saved.parameters():
            if p.requires_grad:
                p.add_(torch.randn_like(p) * 1e-6)  # values bf16 cannot hold
    saved.save_pretrained(tmp_path / "ckpt")

    model = _load(tiny_model_dir, torch.bfloat16)
    apply_trainable_fp32(model, None, torch.bfloat16, None)
    SFTTrainer._load_from_checkpoint(None, str(tmp_path / "ckpt"), model)  # self is only read without `model`
    want = dict(saved.named_parameters())
    for name, p in model.named_parameters():
        assert p.dtype == want[name].dtype and torch.equal(p, want[name]), name
