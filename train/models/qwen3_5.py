"""Qwen3.5 (``model_type`` qwen3_5): natively multimodal, a hybrid language model (Gated DeltaNet
``linear_attention`` layers interleaved with ``full_attention`` layers), Qwen3-VL's 16 px patches, 2x2 merge, 3-D
interleaved mrope and timestamped video frames, but no DeepStack (the merger is the only projector).

What differs from the other Qwen families:
- packing is refused: a Gated DeltaNet layer carries a recurrent state and a causal-convolution window along the
  whole row, and transformers 5.23's torch path (``torch_chunk_gated_delta_rule``, ``causal_conv1d_fn``) ignores
  sample boundaries (the ``cu_seqlens`` it is handed are dropped), so a packed sample would read its
  predecessor's state (tests/test_families2.py measures the leak). verl packs Qwen3.5 with flash-linear-attention
  kernels that honour boundaries (GPU only, not here);
- the chat template thinks by default: the generation prompt opens ``<think>\\n`` unless
  ``enable_thinking=False``, and an assistant turn is trained as ``<think>\\n{reasoning}\\n</think>\\n\\n`` + answer
  (the block empty without reasoning). The assistant span is still ``<|im_start|>assistant\\n`` ... ``<|im_end|>``
  (think block included). A prompt that asks for ``<think>`` (auto_think, think) renders with thinking on: its open
  block (``think_prefix``) starts every trained answer, and the completion carries the reasoning and ``</think>``
  (docs/MODELS.md, "Auto-think on Qwen3.5");
- lmms-eval's ``qwen3_5`` wrapper (0.7.3, ``models/simple/qwen3_5.py`` over ``qwen3_vl.py``): images go as PIL
  through qwen-vl-utils' ``fetch_image`` with ``image_patch_size=16`` within min 64x32x32 / max 128x32x32
  pixels (no JPEG round trip, unlike the qwen2_5_vl wrapper), the processor is then called with
  ``do_resize=False``, and ``enable_thinking=True`` is passed to the chat template.
"""

from __future__ import annotations

from train.models.base import ModuleGroups, register
from train.models.qwen_common import QwenVLFamily

QWEN3_5_GROUPS = ModuleGroups(
    vision=("model.visual.",),
    projector=("model.visual.merger.",),
    llm=("model.language_model.", "lm_head."),
)

# lmms-eval 0.7.3 models/simple/qwen3_5.py defaults
LMMS_MIN_PIXELS = 64 * 32 * 32
LMMS_MAX_PIXELS = 128 * 32 * 32
LMMS_IMAGE_PATCH_SIZE = 16


@register
class Qwen3_5(QwenVLFamily):
    name = "qwen3_5"
    model_types = ("qwen3_5",)
    groups = QWEN3_5_GROUPS
    packing_refusal = ("Qwen3.5's Gated DeltaNet (linear-attention) layers carry their recurrent and convolution "
                       "state from one packed sample into the next on transformers' torch path; set "
                       "train.packing=false")
    verl_refusal = None  # verl 0.9.1 patches qwen3_5 / qwen3_5_moe (verl/models/transformers/qwen3_5.py)
    lmms_model = "qwen3_5"
    lmms_min_pixels = LMMS_MIN_PIXELS
    lmms_max_pixels = LMMS_MAX_PIXELS
    lmms_factor = 2 * LMMS_IMAGE_PATCH_SIZE
    lmms_chat_template_kwargs = {"enable_thinking": True}  # the wrapper's enable_thinking default
    tiny_name = "tiny-qwen3.5"

    def chat_template_kwargs(self, thinking: bool) -> dict:
        """Qwen3.5's thinking switch. Off: the generation prompt closes the think block empty, as an answer trained
        without reasoning continues (``<think>\\n\\n</think>\\n\\n`` + answer). On (prompts that ask for ``<think>``):
        the prompt opens the block, which every trained answer continues, reasoned or not."""
        return {"enable_thinking": bool(thinking)}

    def position_fn(self, model):
        raise ValueError(f"{self.name}: {self.packing_refusal}")

    def lmms_resize(self, image):
        """The image exactly as the wrapper's ``process_vision_info`` gives it: qwen-vl-utils ``fetch_image``."""
        from qwen_vl_utils.vision_process import fetch_image

        return fetch_image({"image": image, "min_pixels": self.lmms_min_pixels, "max_pixels": self.lmms_max_pixels},
                           image_patch_size=LMMS_IMAGE_PATCH_SIZE)

    def lmms_processor_kwargs(self) -> dict:
        return {"images_kwargs": {"do_resize": False}}
