"""``tiny-qwen2.5-vl``: a real ``Qwen2_5_VLForConditionalGeneration`` (~0.5M parameters) with random weights,
the tiny tokenizer and the real ``Qwen2_5_VLProcessor``. The embedded default model: runs and learns on CPU.

Design choice (measured, see docs/TINY_MODEL.md): the text rope_theta is 10, not 1e6. Qwen's 3-D rope gives
image columns the lowest frequencies; with few image tokens and a large theta the columns are
indistinguishable and left/right can never be learned. A small theta fixes that without a warm-up.
"""

from __future__ import annotations

from train.tiny.qwen_chat import CHAT_TEMPLATE, QWEN_EOS, QWEN_TOKEN_IDS, build_qwen_tokenizer

NAME = "tiny-qwen2.5-vl"
VERSION = 1  # bump when anything below changes; the cache key includes it

# head_dim = 128 / 4 = 32, so mrope_section sums to 16.
TEXT_CONFIG = dict(
    hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, max_position_embeddings=4096, rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 10.0, "mrope_section": [4, 6, 6]},
    use_sliding_window=False, tie_word_embeddings=False,
)
VISION_CONFIG = dict(
    depth=2, hidden_size=32, intermediate_size=64, num_heads=2, in_channels=3, patch_size=14,
    spatial_merge_size=2, temporal_patch_size=2, window_size=112, out_hidden_size=128,
    fullatt_block_indexes=[1], tokens_per_second=2,
)
# Small images by default: 56x56 -> 4 image tokens; up to 224x224 -> 64 tokens.
MIN_PIXELS = 56 * 56
MAX_PIXELS = 224 * 224


def build_processor(tokenizer):
    """The real Qwen2.5-VL processor around ``tokenizer`` (needs torchvision for the video processor)."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=14, temporal_patch_size=2, merge_size=2)
    video_processor = Qwen2VLVideoProcessor(size=size, patch_size=14, temporal_patch_size=2, merge_size=2)
    return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               video_processor=video_processor, chat_template=CHAT_TEMPLATE)


def build(seed: int = 0):
    """(model, processor) of the tiny Qwen2.5-VL."""
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    from train.tiny.common import build_vl_model

    tokenizer = build_qwen_tokenizer()
    model = build_vl_model(Qwen2_5_VLForConditionalGeneration, Qwen2_5_VLConfig, tokenizer, seed,
                           text_config=TEXT_CONFIG, vision_config=VISION_CONFIG, token_ids=QWEN_TOKEN_IDS,
                           eos=QWEN_EOS, pad="<|endoftext|>", tie_word_embeddings=False)
    return model, build_processor(tokenizer)
