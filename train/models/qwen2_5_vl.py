"""Qwen2.5-VL (``model_type`` qwen2_5_vl), the paper's model: as Qwen2-VL plus window attention in the ViT and
``second_per_grid_ts`` (the temporal rope spacing of videos) among the vision inputs."""

from __future__ import annotations

from train.models.base import ModuleGroups, register
from train.models.qwen_common import QwenVLFamily


@register
class Qwen25VL(QwenVLFamily):
    name = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    groups = ModuleGroups(vision=("model.visual.",), projector=("model.visual.merger.",),
                          llm=("model.language_model.", "lm_head."))
    vision_keys = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts")
    lmms_model = "qwen2_5_vl"
    # lmms-eval 0.7.3 models/simple/qwen2_5_vl.py defaults: min 256x28x28, max 1605632 (2048 x 28 x 28)
    lmms_min_pixels = 256 * 28 * 28
    lmms_max_pixels = 1605632
    tiny_name = "tiny-qwen2.5-vl"
