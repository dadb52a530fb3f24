"""Qwen2-VL (``model_type`` qwen2_vl): 14 px patches, 2x2 merge, 3-D mrope; the shared Qwen-VL behaviour."""

from __future__ import annotations

from train.models.base import ModuleGroups, register
from train.models.qwen_common import QwenVLFamily


@register
class Qwen2VL(QwenVLFamily):
    name = "qwen2_vl"
    model_types = ("qwen2_vl",)
    groups = ModuleGroups(vision=("model.visual.",), projector=("model.visual.merger.",),
                          llm=("model.language_model.", "lm_head."))
    lmms_model = "qwen2_vl"
    # lmms-eval 0.7.3 models/simple/qwen2_vl.py defaults
    lmms_min_pixels = 3136
    lmms_max_pixels = 602112
    tiny_name = "tiny-qwen2-vl"
