"""Qwen3.5-MoE (``model_type`` qwen3_5_moe): Qwen3.5 with a mixture-of-experts language model (routed experts
plus a gated shared expert); the same module layout, template, packing refusal, vision calls and lmms-eval
wrapper as :mod:`train.models.qwen3_5` (lmms-eval's qwen3_vl loader picks the MoE class from an ``A<n>B`` in the
checkpoint name)."""

from __future__ import annotations

from train.models.base import register
from train.models.qwen3_5 import Qwen3_5


@register
class Qwen3_5Moe(Qwen3_5):
    name = "qwen3_5_moe"
    model_types = ("qwen3_5_moe",)
    packing_refusal = Qwen3_5.packing_refusal.replace("Qwen3.5's", "Qwen3.5-MoE's")
    tiny_name = "tiny-qwen3.5-moe"
