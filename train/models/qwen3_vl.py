"""Qwen3-VL (``model_type`` qwen3_vl) and its MoE (qwen3_vl_moe): 16 px patches, 2x2 merge, timestamps between
video frames, and DeepStack: intermediate ViT features, projected by their own mergers, join the first
language-model layers (so those mergers are projector parameters, and a blank vision call sums them too)."""

from __future__ import annotations

from train.models.base import ModuleGroups, register
from train.models.qwen_common import QwenVLFamily

QWEN3_GROUPS = ModuleGroups(
    vision=("model.visual.",),
    projector=("model.visual.merger.", "model.visual.deepstack_merger_list."),
    llm=("model.language_model.", "lm_head."),
)


@register
class Qwen3VL(QwenVLFamily):
    name = "qwen3_vl"
    model_types = ("qwen3_vl",)
    groups = QWEN3_GROUPS
    lmms_model = "qwen3_vl"
    # lmms-eval 0.7.3 models/simple/qwen3_vl.py: PIL images straight to process_vision_info(image_patch_size=16)
    # (no JPEG round trip; factor 16 x 2) within min 256x28x28 / max 1605632, then the processor with do_resize=False
    lmms_min_pixels = 256 * 28 * 28
    lmms_max_pixels = 1605632
    lmms_factor = 32
    lmms_jpeg = False
    # verl 0.9.1 patches qwen3_vl / qwen3_vl_moe (verl/models/transformers/monkey_patch.py, its own rope index in
    # verl/models/transformers/qwen3_vl.py); its RLHFDataset reads the export with the project's token counts at
    # 16 px patches (tests/test_families_verl.py, tiny-qwen3-vl)
    verl_refusal = None

    def lmms_processor_kwargs(self) -> dict:
        return {"do_resize": False}
    tiny_name = "tiny-qwen3-vl"
