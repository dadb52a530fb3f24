"""Activation-memory arithmetic (train/memory.py): every shipped recipe's micro-batch fits an 80 GB card on
Qwen2.5-VL-7B's dimensions, and the arithmetic itself on hand-checked numbers."""

from __future__ import annotations

import pytest

from train.memory import QWEN25_VL_7B, ModelDims, budget, dims_from_config, layer_activation_bytes_per_token
from train.recipe import load_recipe, recipes_dir

QUICKSTARTS = {"quickstart_sft", "quickstart_grpo", "quickstart_rl"}
"""Tiny-model recipes for 2 CPU cores (their lengths and batches are sized for the tiny model, not a 7B)."""


def shipped() -> list[tuple[str, str]]:
    return [(kind, p.stem) for kind, sub in (("sft", "sft"), ("grpo", "rl"))
            for p in sorted((recipes_dir() / sub).glob("*.yaml")) if p.stem not in QUICKSTARTS]


def test_every_7b_recipe_is_checked():
    names = [n for _, n in shipped()]
    assert {"dist_size_corr", "baseline", "full_think", "auto_think", "l4_think"} <= set(names) and len(names) >= 14


@pytest.mark.parametrize(("kind", "name"), shipped())
def test_shipped_recipe_fits_an_80gb_card_on_qwen25_vl_7b(kind, name):
    b = budget(load_recipe(name), QWEN25_VL_7B, kind)
    assert b.fits, b.line(name)


@pytest.mark.parametrize(("kind", "name"), [("sft", "dist_size_corr"), ("grpo", "full_think")])
def test_the_arithmetic_is_what_turned_checkpointing_on(kind, name):
    """Without gradient checkpointing the 7B micro-batches do not fit (so the recipes' true is needed)."""
    off = budget(load_recipe(name, ["model.gradient_checkpointing=false"]), QWEN25_VL_7B, kind)
    assert not off.fits and off.needs_checkpointing, off.line(name)


def test_arithmetic_by_hand():
    d = QWEN25_VL_7B
    assert d.kv_dim == 512 and round(d.lm_params / 1e9, 2) == 7.62  # docs/PERFORMANCE.md's LLM total
    assert layer_activation_bytes_per_token(d) == 2 * (6 * 3584 + 2 * 512 + 4 * 18944) == 196_608
    b = budget(load_recipe("full_think"), d, "grpo")
    assert b.tokens == 8 * (2048 + 1024)
    # 28 layer inputs of 2 x 3584 bytes + one recomputed layer, per token; 6 bytes per completion logit.
    expected = 24_576 * (28 * 7168 + 196_608) + 8 * 1024 * 152_064 * 6
    assert b.activations == pytest.approx(expected)
    small = ModelDims(hidden=8, layers=2, heads=2, kv_heads=1, vocab=10, intermediate=16)
    assert small.lm_params == 2 * (2 * 64 + 2 * 8 * 4 + 3 * 8 * 16) + 2 * 10 * 8


def test_dims_from_a_transformers_config(tiny_model_dir):
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(tiny_model_dir)
    d = dims_from_config(cfg)
    assert (d.hidden, d.layers, d.vocab) == (cfg.text_config.hidden_size, cfg.text_config.num_hidden_layers,
                                             cfg.text_config.vocab_size)
