"""``tiny-qwen3.5``: a real ``Qwen3_5ForConditionalGeneration`` with random weights, the tiny tokenizer (Qwen's
special tokens plus ``<think>`` / ``</think>``) and the real ``Qwen3VLProcessor`` that Qwen3.5 checkpoints name
(Qwen2-VL image processor at 16 px patches, Qwen3-VL video processor).

Shrunk from the config defaults: 2 text layers, one of each kind Qwen3.5 interleaves (a Gated DeltaNet
``linear_attention`` layer, then a ``full_attention`` layer), head_dim 32 with half of it rotary
(``partial_rotary_factor`` 0.5; the real model rotates a quarter of 256) and interleaved mrope sections summing to
8; a one-block ViT (no DeepStack in Qwen3.5); 8x8 learned vision position embeddings. rope_theta 10 for the same
reason as tiny-qwen2.5-vl (left/right must be learnable from few image tokens).

The chat template is written here (the official one is not shipped offline) to behave like Qwen3.5's where it
matters for training: ChatML turns, ``<|vision_start|><|image_pad|><|vision_end|>`` per image, the final
assistant turn(s) rendered as ``<think>\\n{reasoning}\\n</think>\\n\\n{answer}`` (an empty think block when the
content carries none), and a generation prompt that opens ``<think>\\n`` (thinking by default) unless
``enable_thinking=False`` closes it empty.
"""

from __future__ import annotations

from train.tiny.qwen_chat import SPECIAL_TOKENS

NAME = "tiny-qwen3.5"
VERSION = 2

THINK_TOKENS = ("<think>", "</think>")

# Qwen3.5-like template (see module doc). ``{% generation %}`` marks assistant content for
# return_assistant_tokens_mask; the label spans themselves come from train/models/qwen3_5.py.
CHAT_TEMPLATE = (
    "{% set ns = namespace(last_query=-1) %}"
    "{% for message in messages %}{% if message['role'] == 'user' %}{% set ns.last_query = loop.index0 %}{% endif %}"
    "{% endfor %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "{% if message['content'] is string %}{% set text = message['content'] %}"
    "{% else %}{% set acc = namespace(v='') %}{% for c in message['content'] %}"
    "{% if c['type'] == 'image' or 'image' in c %}{% set acc.v = acc.v + '<|vision_start|><|image_pad|><|vision_end|>' %}"
    "{% elif c['type'] == 'video' or 'video' in c %}{% set acc.v = acc.v + '<|vision_start|><|video_pad|><|vision_end|>' %}"
    "{% elif 'text' in c %}{% set acc.v = acc.v + c['text'] %}{% endif %}"
    "{% endfor %}{% set text = acc.v %}{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{% if '</think>' in text %}"
    "{% set reasoning = text.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') %}"
    "{% set text = text.split('</think>')[-1].lstrip('\n') %}"
    "{% else %}{% set reasoning = '' %}{% endif %}"
    "{% if loop.index0 > ns.last_query %}{{ '<think>\n' + reasoning + '\n</think>\n\n' }}{% endif %}"
    "{{ text }}<|im_end|>{% endgeneration %}{{ '\n' }}"
    "{% else %}{{ text }}<|im_end|>{{ '\n' }}{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}{{ '<think>\n\n</think>\n\n' }}"
    "{% else %}{{ '<think>\n' }}{% endif %}{% endif %}"
)

TEXT_CONFIG = dict(
    hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
    head_dim=32, max_position_embeddings=4096, rms_norm_eps=1e-6, tie_word_embeddings=False,
    layer_types=["linear_attention", "full_attention"],
    linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=32, linear_value_head_dim=32,
    linear_conv_kernel_dim=4,
    rope_parameters={"rope_type": "default", "rope_theta": 10.0, "partial_rotary_factor": 0.5,
                     "mrope_section": [2, 3, 3], "mrope_interleaved": True},
)
VISION_CONFIG = dict(
    depth=1, hidden_size=32, intermediate_size=64, num_heads=2, in_channels=3, patch_size=16,
    spatial_merge_size=2, temporal_patch_size=2, out_hidden_size=128, num_position_embeddings=64,
)
# 64x64 -> 4 image tokens; up to 256x256 -> 64 tokens (as tiny-qwen3-vl).


def build_tokenizer():
    """The tiny BPE tokenizer with Qwen's special tokens, ``<think>`` / ``</think>`` (plain added tokens, kept by
    ``skip_special_tokens`` as in Qwen3.5) and the template above.

    Its normalizer and pre-tokenizer are Qwen3.5's (NFC; transformers' ``Qwen3_5Tokenizer`` regex, one token per
    digit), written into tokenizer.json: transformers 5.23 loads a ``qwen3_5`` checkpoint's tokenizer as
    ``Qwen3_5Tokenizer``, which imposes them whatever the file says, while verl's transformers 5.10 has no such class
    and reads tokenizer.json as it is. With the plain byte-level pre-tokenizer of the other tiny models the two
    environments split " 7" differently and verl's prompt counts came out 1-15 tokens short of the project's."""
    from tokenizers import AddedToken, Regex, normalizers, pre_tokenizers
    from transformers.models.qwen3_5.tokenization_qwen3_5 import PRETOKENIZE_REGEX

    from train.tiny.common import build_tokenizer as build_bpe

    tok = build_bpe(SPECIAL_TOKENS, eos="<|im_end|>", pad="<|endoftext|>", chat_template=CHAT_TEMPLATE)
    backend = tok.backend_tokenizer
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in THINK_TOKENS])
    return tok


def build_with(model_cls, config_cls, seed: int, text_config: dict):
    """(model, processor): tiny-qwen3-vl's builder with this module's tokenizer, vision config and chat template."""
    from train.tiny import qwen3_vl

    return qwen3_vl.build_with(model_cls, config_cls, seed, text_config, tokenizer=build_tokenizer(),
                               vision_config=VISION_CONFIG, chat_template=CHAT_TEMPLATE)


def build(seed: int = 0):
    """(model, processor) of the tiny Qwen3.5."""
    from transformers import Qwen3_5Config, Qwen3_5ForConditionalGeneration

    return build_with(Qwen3_5ForConditionalGeneration, Qwen3_5Config, seed, TEXT_CONFIG)
