"""``tiny-qwen3-vl-moe``: tiny-qwen3-vl with a mixture-of-experts language model (4 experts, 2 per token)."""

from __future__ import annotations

from train.tiny.qwen3_vl import TEXT_CONFIG, build_with

NAME = "tiny-qwen3-vl-moe"
VERSION = 1

MOE_TEXT_CONFIG = dict(TEXT_CONFIG, moe_intermediate_size=128, num_experts=4, num_experts_per_tok=2,
                       decoder_sparse_step=1)


def build(seed: int = 0):
    """(model, processor) of the tiny Qwen3-VL-MoE."""
    from transformers import Qwen3VLMoeConfig, Qwen3VLMoeForConditionalGeneration

    return build_with(Qwen3VLMoeForConditionalGeneration, Qwen3VLMoeConfig, seed, MOE_TEXT_CONFIG)
