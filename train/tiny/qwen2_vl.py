"""``tiny-qwen2-vl``: a real ``Qwen2VLForConditionalGeneration`` with random weights, the tiny tokenizer and the
real ``Qwen2VLProcessor``; the same sizes as tiny-qwen2.5-vl (no window attention in Qwen2-VL's ViT)."""

from __future__ import annotations

from train.tiny.qwen2_5_vl import MAX_PIXELS, MIN_PIXELS, TEXT_CONFIG
from train.tiny.qwen_chat import CHAT_TEMPLATE, QWEN_EOS, QWEN_TOKEN_IDS, build_qwen_tokenizer

NAME = "tiny-qwen2-vl"
VERSION = 1

VISION_CONFIG = dict(depth=2, embed_dim=32, hidden_size=128, mlp_ratio=2, num_heads=2, in_channels=3,
                     patch_size=14, spatial_merge_size=2, temporal_patch_size=2)


def build(seed: int = 0):
    """(model, processor) of the tiny Qwen2-VL."""
    from transformers import (
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
        Qwen2VLImageProcessor,
        Qwen2VLProcessor,
        Qwen2VLVideoProcessor,
    )

    from train.tiny.common import build_vl_model

    tokenizer = build_qwen_tokenizer()
    model = build_vl_model(Qwen2VLForConditionalGeneration, Qwen2VLConfig, tokenizer, seed,
                           text_config=TEXT_CONFIG, vision_config=VISION_CONFIG, token_ids=QWEN_TOKEN_IDS,
                           eos=QWEN_EOS, pad="<|endoftext|>", tie_word_embeddings=False)
    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    kw = dict(size=size, patch_size=14, temporal_patch_size=2, merge_size=2)
    processor = Qwen2VLProcessor(image_processor=Qwen2VLImageProcessor(**kw), tokenizer=tokenizer,
                                 video_processor=Qwen2VLVideoProcessor(**kw), chat_template=CHAT_TEMPLATE)
    return model, processor
