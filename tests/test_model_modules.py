"""The per-architecture module table, freezing, parameter groups, and model loading choices."""

from __future__ import annotations

import logging

import pytest
import torch

from train.config import FreezeConfig, ModelConfig, OptimConfig
from train.model_loading import load_model, pick_attn_implementation, pick_dtype
from train.models import family_for_type, supported
from train.module_groups import (
    UnsupportedArchitecture,
    apply_freeze,
    format_counts,
    group_of,
    param_counts,
    param_groups,
)

TEXT = dict(hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
            vocab_size=100, bos_token_id=0, eos_token_id=1, pad_token_id=0,
            rope_parameters={"rope_type": "default", "rope_theta": 10.0, "mrope_section": [4, 6, 6]})


def tiny_qwen2_vl():
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration

    return Qwen2VLForConditionalGeneration(Qwen2VLConfig(
        text_config=TEXT, vision_config=dict(depth=1, embed_dim=32, hidden_size=64, num_heads=2, mlp_ratio=2)))


def tiny_qwen3_vl():
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    return Qwen3VLForConditionalGeneration(Qwen3VLConfig(
        text_config=dict(TEXT, head_dim=32),
        vision_config=dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64,
                           deepstack_visual_indexes=[0])))


@pytest.fixture(scope="module")
def qwen25():
    torch.set_num_threads(1)
    return load_model(ModelConfig(), "cpu")


def _expected_group(name: str) -> str:
    if ".merger." in name or ".deepstack_merger_list." in name:
        return "projector"
    if name.startswith("model.visual."):
        return "vision"
    assert name.startswith(("model.language_model.", "lm_head.")), name
    return "llm"


@pytest.mark.parametrize("build", ["qwen2_5_vl", "qwen2_vl", "qwen3_vl"])
def test_table_covers_every_parameter(build, qwen25):
    model = {"qwen2_5_vl": lambda: qwen25, "qwen2_vl": tiny_qwen2_vl, "qwen3_vl": tiny_qwen3_vl}[build]()
    assert model.config.model_type == build and build in supported()
    arch = family_for_type(build).groups
    groups = {group_of(n, arch) for n, _ in model.named_parameters()}
    assert groups == {"vision", "projector", "llm"}
    for name, _ in model.named_parameters():
        assert group_of(name, arch) == _expected_group(name)


def test_unknown_architecture_is_named():
    class Fake(torch.nn.Module):
        config = type("C", (), {"model_type": "llava"})()

    with pytest.raises(UnsupportedArchitecture, match=r"'llava'.*qwen2_5_vl"):
        param_counts(Fake())


@pytest.mark.parametrize("freeze,trainable", [
    (FreezeConfig(), {"projector", "llm"}),
    (FreezeConfig(vision=False), {"vision", "projector", "llm"}),
    (FreezeConfig(projector=True), {"llm"}),
    (FreezeConfig(llm=True), {"projector"}),
])
def test_freeze_and_param_groups(freeze, trainable):
    model = tiny_qwen2_vl()
    counts = apply_freeze(model, freeze)
    arch = family_for_type("qwen2_vl").groups
    for name, p in model.named_parameters():
        assert p.requires_grad == (group_of(name, arch) in trainable), name
    assert {g for g, c in counts.items() if c["trainable"]} == trainable
    assert all(c["trainable"] in (0, c["total"]) for c in counts.values())
    assert "projector" in format_counts(counts)
    optim = OptimConfig(lr=1e-3, projector_lr=5e-3, vision_lr=1e-4, weight_decay=0.1)
    groups = param_groups(model, optim)
    lrs = {"vision": 1e-4, "projector": 5e-3, "llm": 1e-3}
    in_groups = {id(p) for g in groups for p in g["params"]}
    assert in_groups == {id(p) for p in model.parameters() if p.requires_grad}
    for g in groups:
        base = g["name"].removesuffix("_no_decay")
        assert g["lr"] == lrs[base]
        assert g["weight_decay"] == (0.0 if g["name"].endswith("_no_decay") else 0.1)


def test_frozen_params_get_no_grads_and_no_optimizer_state(qwen25):
    import copy

    model = copy.deepcopy(qwen25)
    apply_freeze(model, FreezeConfig())
    opt = torch.optim.AdamW(param_groups(model, OptimConfig(lr=1e-3)))
    ids = torch.randint(10, 100, (1, 12))
    model(input_ids=ids, labels=ids).loss.backward()
    opt.step()
    for name, p in model.named_parameters():
        if name.startswith("model.visual.") and ".merger." not in name:
            assert p.grad is None and p not in opt.state, name
    assert any(p in opt.state for p in model.model.language_model.parameters())


def test_dtype_and_attention_choices(caplog):
    assert pick_dtype("auto", "cpu") == torch.float32
    assert pick_dtype("auto", "cuda") == torch.bfloat16
    assert pick_dtype("bf16", "cpu") == torch.float32  # logged fallback
    with caplog.at_level(logging.INFO, logger="train.model_loading"):
        assert pick_attn_implementation("auto", "cpu") == "sdpa"
        assert pick_attn_implementation("flash_attention_2", "cpu") == "sdpa"
    assert "attention: sdpa" in caplog.text and "flash_attention_2 asked for" in caplog.text


def test_gradient_checkpointing_is_applied():
    model = load_model(ModelConfig(gradient_checkpointing=True), "cpu")
    assert model.is_gradient_checkpointing
