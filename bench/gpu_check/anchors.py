"""Reference figures written beside the measured ones in bench/gpu_results.json, each with its source.

EasyR1's performance baselines (hiyouga/EasyR1, assets/baselines.md at EasyR1 v0.3.2; environment
hiyouga/verl:ngc-th2.7.1-cu12.6-vllm0.10.0): Qwen2.5-VL-7B-Instruct GRPO on Geometry3k, 8 x H100 80GB,
vLLM tensor parallel 2. "Throughput: number of tokens per second per GPU by one training step", computed by
EasyR1's ``compute_throughout_metrics`` (verl/trainer/metrics.py) as the non-padding prompt + response tokens
of the step / (step seconds x GPUs). "Actor MFU" is the actor update's FLOPs over the update's time only
(see bench/gpu_check/flops.py for how that differs from our step MFU).
"""

from __future__ import annotations

EASYR1 = "hiyouga/EasyR1 assets/baselines.md (EasyR1 v0.3.2), 'Performance Baselines' table"
EASYR1_CONDITIONS = ("Qwen2.5-VL-7B-Instruct, GRPO on Geometry3k, 8 x H100 80GB, vLLM TP 2, EasyR1 defaults "
                     "otherwise (torch 2.7.1, vLLM 0.10.0)")

ANCHORS: list[dict] = [
    {"id": "easyr1_7b_grpo_amp_mb1", "kind": "published measurement", "source": EASYR1,
     "conditions": EASYR1_CONDITIONS + "; AMP; micro-batch 1 update / 2 experience",
     "step": "grpo", "tokens_per_s_per_gpu": 1600, "seconds_per_step": 145, "actor_mfu": 0.160},
    {"id": "easyr1_7b_grpo_amp_mb4", "kind": "published measurement", "source": EASYR1,
     "conditions": EASYR1_CONDITIONS + "; AMP; micro-batch 4 update / 8 experience",
     "step": "grpo", "tokens_per_s_per_gpu": 2000, "seconds_per_step": 120, "actor_mfu": 0.232},
    {"id": "easyr1_7b_grpo_bf16_mb1", "kind": "published measurement", "source": EASYR1,
     "conditions": EASYR1_CONDITIONS + "; BF16; micro-batch 1 update / 2 experience",
     "step": "grpo", "tokens_per_s_per_gpu": 1600, "seconds_per_step": 145, "actor_mfu": 0.160},
    {"id": "project_7b_sft_h100_estimate", "kind": "project estimate (arithmetic, not a measurement)",
     "source": "docs/PERFORMANCE.md, 'GPU estimate: Qwen2.5-VL-7B on 8 GPUs'",
     "conditions": "Qwen2.5-VL-7B, vision frozen, bf16, H100 SXM, 45.7 GFLOP per trained token at an assumed "
                   "MFU of 30-40%",
     "step": "sft", "tokens_per_s_per_gpu": [6500, 8700], "mfu": [0.30, 0.40]},
]


def comparable(model_type: str, n_llm: int) -> bool:
    """Whether a measurement is of the anchors' kind of model: a Qwen2.5-VL with a 7B-class language model
    (6-8 B matmul weights). Anything else is written beside the anchors but marked not comparable."""
    return model_type == "qwen2_5_vl" and 6e9 <= n_llm <= 8e9
