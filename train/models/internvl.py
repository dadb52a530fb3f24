"""InternVL3 / InternVL3.5 in the transformers-native layout (``model_type`` internvl, the ``-hf`` checkpoints).

- Modules: ``model.vision_tower`` (InternViT), ``model.multi_modal_projector`` (layer norm + 2-layer MLP after a
  0.5 pixel shuffle), ``model.language_model`` (Qwen2.5 for InternVL3, Qwen3 for InternVL3.5) and ``lm_head``.
- Chat: ChatML (the language model's), so the assistant span is ``<|im_start|>assistant\\n`` ... ``<|im_end|>``.
- Vision: one input, ``pixel_values`` of (tiles, 3, H, W): the image processor crops an image into up to
  ``max_patches`` tiles plus a thumbnail, and the processor merges video frames into the same tensor (a frame is
  one tile); every tile becomes ``image_seq_length`` ``<IMG_CONTEXT>`` tokens between ``<img>`` and ``</img>``.
  A blank vision call is one zero tile.
- Positions: 1-D, so a packed row needs one row of position ids restarting at 0 for every sample (plus the
  block-diagonal attention mask train/packing.py builds).
- lmms-eval: the wrapper for this layout is ``internvl_hf`` (0.7.3 ``models/chat/internvl_hf.py``; the
  ``internvl3`` / ``internvl3_5`` wrappers load OpenGVLab's remote-code layout instead). It gives the processor
  the task's images unchanged with ``min_patches=1, max_patches=12`` and adds no system turn (the template's
  default applies).
- verl 0.9.1 has no InternVL support (no model patch, no position handling for its processor): refused.
"""

from __future__ import annotations

from train.models.base import ModelFamily, ModuleGroups, register
from train.models.qwen_common import END, HEADER

INTERNVL_GROUPS = ModuleGroups(
    vision=("model.vision_tower.",),
    projector=("model.multi_modal_projector.",),
    llm=("model.language_model.", "lm_head."),
)
VISION_TOKEN_ATTRS = ("context_image_token", "start_image_token", "end_image_token", "video_token")
"""Tokenizer attributes naming InternVL's image / video tokens (tokenizer_config.json ``extra_special_tokens``)."""
# lmms-eval 0.7.3 models/chat/internvl_hf.py defaults
LMMS_MIN_PATCHES = 1
LMMS_MAX_PATCHES = 12


@register
class InternVL(ModelFamily):
    name = "internvl"
    model_types = ("internvl",)
    groups = INTERNVL_GROUPS
    vision_keys = ("pixel_values",)
    pixel_keys = ("pixel_values",)
    grid_of: dict[str, str] = {}
    packing_refusal = None
    verl_refusal = ("verl 0.9.1 does not support InternVL (verl/models/transformers/monkey_patch.py: "
                    "apply_monkey_patch has no internvl branch, and no verl module names internvl); "
                    "use grpo.backend=trl")
    lmms_model = "internvl_hf"
    lmms_system_prompt = None
    """lmms-eval 0.7.3's internvl_hf renders the task's messages as they are (``doc_to_messages``: one user turn,
    visuals then text) and inserts no system turn, so the chat template's default system turn applies."""
    tiny_name = "tiny-internvl"

    # ------------------------------------------------------------------ chat
    assistant_header = HEADER  # ChatML turns, as Qwen's
    turn_end = END

    # ------------------------------------------------------------------ packing
    def position_fn(self, model):
        import torch

        def positions(enc) -> torch.Tensor:
            return torch.arange(len(enc)).view(1, -1)

        return positions

    # ------------------------------------------------------------------ vision calls
    vision_attr = "vision_tower"

    def blank_vision_output(self, owner, kind: str):
        """One zero tile through the tower, the pixel shuffle and the projector, summed."""
        import torch

        vc = owner.config.vision_config
        h, w = vc.image_size
        param = next(owner.vision_tower.parameters())
        pixels = torch.zeros(1, vc.num_channels, h, w, dtype=param.dtype, device=param.device)
        return owner.get_image_features(pixel_values=pixels, return_dict=True).pooler_output.sum()

    def vision_patches(self, config, batch) -> int:
        """Tiles x patches per tile: every ``pixel_values`` tile (image crops, thumbnails and video frames alike) is
        cut into patch_size patches by InternViT (its class token, one per tile, is not a patch)."""
        import torch

        pixels = batch.get("pixel_values")
        if not isinstance(pixels, torch.Tensor) or pixels.numel() == 0:
            return 0
        size = config.vision_config.patch_size
        ph, pw = (size, size) if isinstance(size, int) else size
        return int(pixels.shape[0]) * (int(pixels.shape[-2]) // ph) * (int(pixels.shape[-1]) // pw)

    # ------------------------------------------------------------------ tokens
    def suppressed_token_ids(self, processor, model) -> list[int]:
        tok = processor.tokenizer
        ids = {getattr(model.config, "image_token_id", None)}
        for attr in VISION_TOKEN_ATTRS:
            token = getattr(tok, attr, None)
            if token is not None:
                tid = tok.convert_tokens_to_ids(token)
                if tid is not None and tid != tok.unk_token_id:
                    ids.add(tid)
        return sorted(int(i) for i in ids if i is not None)

    # ------------------------------------------------------------------ lmms-eval
    def lmms_resize(self, image):
        """internvl_hf hands the task's image to the processor as it is (the processor tiles it)."""
        return image

    def lmms_processor_kwargs(self) -> dict:
        return {"images_kwargs": {"min_patches": LMMS_MIN_PATCHES, "max_patches": LMMS_MAX_PATCHES}}
