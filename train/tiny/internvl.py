"""``tiny-internvl``: a real ``InternVLForConditionalGeneration`` (the transformers-native InternVL3/3.5 layout)
with random weights, a tiny tokenizer carrying InternVL's image tokens, and the real ``InternVLProcessor``
(GotOcr2 image processor cropping to tiles plus a thumbnail, InternVL video processor).

Shrunk from the InternVL3.5 layout: 56x56 tiles (real: 448) of 14 px patches, so 16 patches per tile and, after
the 0.5 pixel shuffle, 4 image tokens per tile (``image_seq_length``; real: 256); at most 4 tiles per image
(real: 12) plus the thumbnail; a one-layer InternViT; a 2-layer Qwen3 language model (InternVL3.5's LLM family;
InternVL3 used Qwen2.5, served by the same class). Positions are 1-D, so rope_theta keeps a text default (10^4,
project choice).

The chat template is written here to behave like the -hf checkpoints': ChatML turns, ``<IMG_CONTEXT>\\n`` per
image and ``<video>\\n`` per video in the user turn (the processor expands them to
``<img><IMG_CONTEXT>x(4 x tiles)</img>`` and ``FrameN: <img>...</img>`` lines).
"""

from __future__ import annotations

NAME = "tiny-internvl"
VERSION = 1

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<video>"]
# tokenizer attributes InternVLProcessor reads (tokenizer_config.json "extra_special_tokens" of the -hf checkpoints)
EXTRA_SPECIAL_TOKENS = {"start_image_token": "<img>", "end_image_token": "</img>",
                        "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>"}
EOS = ["<|im_end|>", "<|endoftext|>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for c in message['content'] %}{% if 'text' in c %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>{% endgeneration %}{{ '\n' }}"
    "{% else %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' or 'image' in c %}{{ '<IMG_CONTEXT>\n' }}"
    "{% elif c['type'] == 'video' or 'video' in c %}{{ '<video>\n' }}"
    "{% elif 'text' in c %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>{{ '\n' }}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

TILE = 56
PATCH = 14
IMAGE_SEQ_LENGTH = (TILE // PATCH) ** 2 // 4  # pixel shuffle 0.5 halves both sides: 4 tokens per tile
MAX_TILES = 4

TEXT_CONFIG = dict(
    model_type="qwen3", hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=2, head_dim=32, max_position_embeddings=4096, rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0}, tie_word_embeddings=False,
)
VISION_CONFIG = dict(
    hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
    image_size=[TILE, TILE], patch_size=[PATCH, PATCH],
)


def build_tokenizer():
    from train.tiny.common import build_tokenizer as build_bpe

    tok = build_bpe(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>", chat_template=CHAT_TEMPLATE)
    # what passing extra_special_tokens={...} at construction does: named tokens, saved to tokenizer_config.json
    tok._set_model_specific_special_tokens(dict(EXTRA_SPECIAL_TOKENS))
    return tok


def build_processor(tokenizer):
    from transformers import GotOcr2ImageProcessor, InternVLProcessor, InternVLVideoProcessor

    size = {"height": TILE, "width": TILE}
    image_processor = GotOcr2ImageProcessor(size=size, crop_to_patches=True, min_patches=1, max_patches=MAX_TILES)
    video_processor = InternVLVideoProcessor(size=size)
    return InternVLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=video_processor,
                             image_seq_length=IMAGE_SEQ_LENGTH, chat_template=CHAT_TEMPLATE)


def build(seed: int = 0):
    """(model, processor) of the tiny InternVL."""
    import torch
    from transformers import InternVLConfig, InternVLForConditionalGeneration

    tokenizer = build_tokenizer()

    def tid(token: str) -> int:
        return tokenizer.convert_tokens_to_ids(token)

    text = dict(TEXT_CONFIG, vocab_size=len(tokenizer), bos_token_id=tid("<|endoftext|>"),
                eos_token_id=tid("<|im_end|>"), pad_token_id=tid("<|endoftext|>"))
    config = InternVLConfig(text_config=text, vision_config=dict(VISION_CONFIG), image_token_id=tid("<IMG_CONTEXT>"),
                            image_seq_length=IMAGE_SEQ_LENGTH, downsample_ratio=0.5, tie_word_embeddings=False)
    torch.manual_seed(seed)
    model = InternVLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [tid(t) for t in EOS]
    model.generation_config.pad_token_id = tid("<|endoftext|>")
    model.generation_config.do_sample = False
    return model, build_processor(tokenizer)
