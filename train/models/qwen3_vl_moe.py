"""Qwen3-VL-MoE (``model_type`` qwen3_vl_moe): Qwen3-VL with a mixture-of-experts language model; the same
module layout, template, positions and vision calls as :mod:`train.models.qwen3_vl`."""

from __future__ import annotations

from train.models.base import register
from train.models.qwen3_vl import Qwen3VL


@register
class Qwen3VLMoe(Qwen3VL):
    name = "qwen3_vl_moe"
    model_types = ("qwen3_vl_moe",)
    tiny_name = "tiny-qwen3-vl-moe"
