"""What the Qwen-VL families (Qwen2-VL, Qwen2.5-VL, Qwen3-VL and its MoE) share.

- Chat template: ChatML. An assistant turn is ``<|im_start|>assistant\\n`` ... ``<|im_end|>``; matching that
  header on token ids works for the official templates, which carry no ``{% generation %}`` markers.
- Positions: 3-D multimodal rope (``get_rope_index`` of the multimodal body); a packed row takes 4 rows of
  position ids: row 0 the text positions restarting at 0 for every sample (transformers reads it as the packed
  sequence boundaries), rows 1-3 the rope positions of each sample computed alone.
- Vision: the tower is ``visual`` on the multimodal body; a blank call is one ``merge x merge`` patch grid.
- lmms-eval: every visual becomes an image, JPEG-85 round trip then qwen-vl-utils' smart resize with factor
  patch x merge within the wrapper's pixel limits.
"""

from __future__ import annotations

import inspect
import io

from train.models.base import ModelFamily

HEADER = "<|im_start|>assistant\n"
END = "<|im_end|>"
VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
LMMS_JPEG_QUALITY = 85


def smart_resize(h: int, w: int, factor: int, min_pixels: int, max_pixels: int) -> tuple[int, int]:
    """qwen-vl-utils' / the Qwen2-VL image processor's resize rule: sides multiples of ``factor``, area within
    [min_pixels, max_pixels], aspect ratio kept as nearly as possible."""
    import math

    hb = max(factor, round(h / factor) * factor)
    wb = max(factor, round(w / factor) * factor)
    if hb * wb > max_pixels:
        beta = math.sqrt(h * w / max_pixels)
        hb = max(factor, math.floor(h / beta / factor) * factor)
        wb = max(factor, math.floor(w / beta / factor) * factor)
    elif hb * wb < min_pixels:
        beta = math.sqrt(min_pixels / (h * w))
        hb = math.ceil(h * beta / factor) * factor
        wb = math.ceil(w * beta / factor) * factor
    return hb, wb


def _size_bounds(size) -> tuple[int | None, int | None]:
    get = size.get if isinstance(size, dict) else (lambda k: getattr(size, k, None))  # SizeDict in 5.x
    return get("shortest_edge"), get("longest_edge")


class QwenVLFamily(ModelFamily):
    """Base of the Qwen-VL families; a subclass sets names, groups and lmms-eval settings."""

    packing_refusal = None
    verl_refusal = None
    lmms_min_pixels: int = 256 * 28 * 28
    lmms_max_pixels: int = 1605632
    lmms_factor: int = 28
    lmms_jpeg: bool = True
    """The wrapper re-encodes every image as JPEG quality 85 before resizing (qwen2_vl, qwen2_5_vl)."""

    # ------------------------------------------------------------------ chat
    assistant_header = HEADER
    turn_end = END

    # ------------------------------------------------------------------ packing
    def position_fn(self, model):
        import torch

        owner = next((m for m in model.modules() if hasattr(m, "get_rope_index")), None)
        if owner is None:
            raise ValueError(f"{type(model).__name__} has no get_rope_index")
        accepted = set(inspect.signature(owner.get_rope_index).parameters)

        def positions(enc) -> torch.Tensor:
            n = len(enc)
            text = torch.arange(n).view(1, -1)
            if "image_grid_thw" not in enc.vision and "video_grid_thw" not in enc.vision:
                return text.expand(4, -1)
            kwargs = {"mm_token_type_ids": enc.mm_token_type_ids[None],
                      "image_grid_thw": enc.vision.get("image_grid_thw"),
                      "video_grid_thw": enc.vision.get("video_grid_thw"),
                      "second_per_grid_ts": enc.vision.get("second_per_grid_ts")}
            kwargs = {k: v for k, v in kwargs.items() if k in accepted}
            with torch.no_grad():
                pos, _ = owner.get_rope_index(enc.input_ids[None], **kwargs)
            return torch.cat([text, pos[:, 0, :]], dim=0)

        return positions

    def text_positions(self, position_ids):
        """Row 0 of the 4 packed position rows: the text positions (rows 1-3 are the 3-D rope positions)."""
        return position_ids[0]

    # ------------------------------------------------------------------ vision calls
    def blank_vision_output(self, owner, kind: str):
        import torch

        vc = owner.config.vision_config
        merge = vc.spatial_merge_size
        dim = vc.in_channels * vc.temporal_patch_size * vc.patch_size ** 2
        param = next(owner.visual.parameters())
        grid = torch.tensor([[1, merge, merge]], device=param.device)
        pixels = torch.zeros(merge * merge, dim, dtype=param.dtype, device=param.device)
        out = owner.get_image_features(pixels, grid, return_dict=True)
        total = _sum_all(out.pooler_output)
        deepstack = getattr(out, "deepstack_features", None)  # Qwen3-VL: features that join the first LM layers
        if deepstack:
            total = total + _sum_all(deepstack)
        return total

    # ------------------------------------------------------------------ tokens
    def suppressed_token_ids(self, processor, model) -> list[int]:
        tok = processor.tokenizer
        ids = {getattr(model.config, name, None) for name in ("image_token_id", "video_token_id",
                                                             "vision_start_token_id", "vision_end_token_id")}
        for token in VISION_TOKENS:
            tid = tok.convert_tokens_to_ids(token)
            if tid is not None and tid != tok.unk_token_id:
                ids.add(tid)
        return sorted(int(i) for i in ids if i is not None)

    def resized_image_sizes(self, processor, images: list) -> list[tuple[int, int]]:
        ip = processor.image_processor
        lo, hi = _size_bounds(ip.size)
        factor = ip.patch_size * ip.merge_size
        return [smart_resize(im.height, im.width, factor, lo, hi) for im in images]

    # ------------------------------------------------------------------ lmms-eval
    def lmms_resize(self, image):
        """(JPEG quality 85 round trip if the wrapper does it), then qwen-vl-utils' ``fetch_image`` resize: smart
        resize with factor patch x merge within the wrapper's pixel limits, PIL's default (bicubic) filter."""
        from PIL import Image

        img = image.convert("RGB")
        if self.lmms_jpeg:
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=LMMS_JPEG_QUALITY)
            buf.seek(0)
            img = Image.open(buf).convert("RGB")
        h, w = smart_resize(img.height, img.width, self.lmms_factor, self.lmms_min_pixels, self.lmms_max_pixels)
        return img.resize((w, h), Image.Resampling.BICUBIC)

    def lmms_processor_kwargs(self) -> dict:
        return {"images_kwargs": {"size": {"shortest_edge": self.lmms_min_pixels,
                                           "longest_edge": self.lmms_max_pixels}}}


def _sum_all(x):
    if isinstance(x, (list, tuple)):
        return sum(_sum_all(p) for p in x)
    return x.sum()
