"""``tiny-qwen3-vl``: a real ``Qwen3VLForConditionalGeneration`` with random weights, the tiny tokenizer and the
real ``Qwen3VLProcessor`` (Qwen2-VL image processor at 16 px patches, Qwen3-VL video processor).

Shrunk from the config defaults: 2 text layers (head_dim 32, interleaved mrope sections summing to 16), a
2-block ViT whose block 0 feeds one DeepStack merger (so the DeepStack path runs in every test), 16x16
learned position embeddings. rope_theta 10 for the same reason as tiny-qwen2.5-vl (train/tiny/qwen2_5_vl.py).
"""

from __future__ import annotations

from train.tiny.qwen_chat import CHAT_TEMPLATE, QWEN_EOS, QWEN_TOKEN_IDS, build_qwen_tokenizer

NAME = "tiny-qwen3-vl"
VERSION = 1

TEXT_CONFIG = dict(
    hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    head_dim=32, max_position_embeddings=4096, rms_norm_eps=1e-6, tie_word_embeddings=False,
    rope_parameters={"rope_type": "default", "rope_theta": 10.0, "mrope_section": [6, 5, 5],
                     "mrope_interleaved": True},
)
VISION_CONFIG = dict(
    depth=2, hidden_size=32, intermediate_size=64, num_heads=2, in_channels=3, patch_size=16,
    spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=128, num_position_embeddings=256,
    deepstack_visual_indexes=[0],
)
# 64x64 -> 4 image tokens; up to 256x256 -> 64 tokens (the 16 px analogue of tiny-qwen2.5-vl's bounds).
MIN_PIXELS = 64 * 64
MAX_PIXELS = 256 * 256


def build_processor(tokenizer, chat_template: str = CHAT_TEMPLATE):
    """The real ``Qwen3VLProcessor`` (Qwen2-VL image processor at 16 px patches, Qwen3-VL video processor);
    tiny-qwen3.5 uses it too, with its own chat template."""
    from transformers import Qwen2VLImageProcessor, Qwen3VLProcessor, Qwen3VLVideoProcessor

    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=16, temporal_patch_size=2, merge_size=2,
                                            image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    video_processor = Qwen3VLVideoProcessor(size=size, patch_size=16, temporal_patch_size=2, merge_size=2,
                                            image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5])
    return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                            video_processor=video_processor, chat_template=chat_template)


def build_with(model_cls, config_cls, seed: int, text_config: dict, tokenizer=None,
               vision_config: dict | None = None, chat_template: str = CHAT_TEMPLATE):
    """(model, processor) of a tiny Qwen3-VL-like model: the Qwen3-VL families, and Qwen3.5 with its own tokenizer,
    vision config and chat template."""
    from train.tiny.common import build_vl_model

    tokenizer = tokenizer if tokenizer is not None else build_qwen_tokenizer()
    model = build_vl_model(model_cls, config_cls, tokenizer, seed, text_config=text_config,
                           vision_config=vision_config if vision_config is not None else VISION_CONFIG,
                           token_ids=QWEN_TOKEN_IDS, eos=QWEN_EOS, pad="<|endoftext|>", tie_word_embeddings=False)
    return model, build_processor(tokenizer, chat_template)


def build(seed: int = 0):
    """(model, processor) of the tiny Qwen3-VL."""
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    return build_with(Qwen3VLForConditionalGeneration, Qwen3VLConfig, seed, TEXT_CONFIG)
