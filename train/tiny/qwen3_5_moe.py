"""``tiny-qwen3.5-moe``: tiny-qwen3.5 with a mixture-of-experts language model (4 experts, 2 per token, plus
Qwen3.5-MoE's gated shared expert).

Experts are 128 wide (``moe_intermediate_size``): measured in an earlier attempt, 64-wide experts left the
SFT-learns test at chance; 128 learns like the dense model.
"""

from __future__ import annotations

from train.tiny.qwen3_5 import TEXT_CONFIG, build_with

NAME = "tiny-qwen3.5-moe"
VERSION = 1

MOE_TEXT_CONFIG = {k: v for k, v in TEXT_CONFIG.items() if k != "intermediate_size"}
MOE_TEXT_CONFIG.update(moe_intermediate_size=128, shared_expert_intermediate_size=128, num_experts=4,
                       num_experts_per_tok=2)


def build(seed: int = 0):
    """(model, processor) of the tiny Qwen3.5-MoE."""
    from transformers import Qwen3_5MoeConfig, Qwen3_5MoeForConditionalGeneration

    return build_with(Qwen3_5MoeForConditionalGeneration, Qwen3_5MoeConfig, seed, MOE_TEXT_CONFIG)
