"""The embedded default model: a tiny Qwen2.5-VL (~0.5M parameters) that runs and learns on CPU.

It is a real ``Qwen2_5_VLForConditionalGeneration`` with random weights, a byte-level BPE
tokenizer trained here on synthetic text (Qwen's special tokens and a Qwen-style chat template
that marks assistant content with ``{% generation %}``), and the real ``Qwen2_5_VLProcessor``
(image and video processors). It is written as a plain Hugging Face directory and loaded through
``from_pretrained`` exactly like ``Qwen/Qwen2.5-VL-7B-Instruct``.

Design choice (measured; docs/RECIPES.md, "The embedded tiny model"): the text rope_theta is 10, not 1e6. Qwen's
3-D rope gives image columns the lowest frequencies; with few image tokens and a large theta the
columns are indistinguishable and left/right can never be learned. A small theta fixes that
without a warm-up.

    python launch/tiny_model.py --out DIR     # write the tiny model to DIR
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

TINY_NAME = "tiny-qwen2.5-vl"
TINY_VERSION = 1  # bump when anything below changes; the cache key includes it

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
    "<|image_pad|>", "<|video_pad|>",
]

# Qwen2.5-VL's chat template, with assistant content wrapped in {% generation %} so that
# return_assistant_tokens_mask (assistant-only loss) works.
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% set video_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['role'] == 'assistant' %}{% generation %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}{% if 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>{% endgeneration %}\n"
    "{% else %}"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}{% if add_vision_id %}Picture {{ image_count.value }}: {% endif %}"
    "<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif content['type'] == 'video' or 'video' in content %}"
    "{% set video_count.value = video_count.value + 1 %}{% if add_vision_id %}Video {{ video_count.value }}: {% endif %}"
    "<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

# Architecture of the tiny model. head_dim = 128 / 4 = 32, so mrope_section sums to 16.
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
VOCAB_SIZE = 1024


def _corpus(n: int = 4000, seed: int = 0) -> list[str]:
    """Synthetic sentences in the vocabulary of the engine's tasks and answer formats."""
    rng = random.Random(seed)
    colors = ["red", "green", "blue", "yellow", "purple", "orange", "white", "black", "gray", "cyan"]
    shapes = ["box", "cube", "sphere", "ball", "cylinder", "object", "point", "marker", "camera"]
    words = ["left", "right", "above", "below", "closer", "farther", "larger", "smaller", "front",
             "behind", "near", "far", "up", "down", "forward", "backward", "view", "image", "frame",
             "distance", "depth", "size", "height", "width", "meters", "degrees", "roll", "pitch",
             "direction", "motion", "rotate", "move", "turn", "stop", "yes", "no", "which", "what",
             "how", "many", "is", "the", "of", "in", "to", "from", "and", "a", "an", "answer",
             "question", "option", "options", "first", "second", "there", "are", "count", "color",
             "shape", "scene", "ground", "plane", "object", "objects", "think", "step", "because"]
    templates = [
        "Which {s} is {w}, the {c} {s} or the {c2} {s2}?",
        "The {c} {s} is {w} than the {c2} {s2}.",
        "How many {s}s are there in the image? Answer: {n}",
        "<think>The {c} {s} looks {w}, so the answer is {L}.</think><answer>{L}</answer>",
        "<answer>{L}</answer>",
        "{L}. The {c} {s}\n{L2}. The {c2} {s2}",
        "Answer with the option's letter from the given choices directly.",
        "Please answer the question using a single word or phrase.",
        '{{"actions": ["W", "A", "D", "S", "STOP"], "step_nums": [{n}, {n2}, 1, 2, 0]}}',
        '{{"pitch": {f}, "roll": {f2}, "vfov": {f3}}}',
        "The distance is {f} meters. The depth of the point is {f2} m.",
        "Picture 1: view one. Picture 2: view two. The camera moved {w}.",
    ]
    out = []
    for _ in range(n):
        t = rng.choice(templates)
        out.append(t.format(
            s=rng.choice(shapes), s2=rng.choice(shapes), c=rng.choice(colors), c2=rng.choice(colors),
            w=rng.choice(words), n=rng.randint(0, 12), n2=rng.randint(0, 10),
            L=rng.choice("ABCD"), L2=rng.choice("ABCD"),
            f=round(rng.uniform(-90, 90), 2), f2=round(rng.uniform(0, 20), 1), f3=round(rng.uniform(30, 90), 1),
        ))
    out.extend(" ".join(rng.choice(words + colors + shapes) for _ in range(12)) for _ in range(n // 2))
    return out


def build_tokenizer():
    """A byte-level BPE tokenizer with Qwen's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB_SIZE - len(SPECIAL_TOKENS), special_tokens=[],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL_TOKENS[1:], model_max_length=32768,
                                   padding_side="right", clean_up_tokenization_spaces=False)
    fast.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    fast.add_special_tokens({"pad_token": "<|endoftext|>"})
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_processor(tokenizer):
    """The real Qwen2.5-VL processor around ``tokenizer`` (needs torchvision for the video processor)."""
    from transformers import Qwen2_5_VLProcessor, Qwen2VLImageProcessor, Qwen2VLVideoProcessor

    size = {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS}
    image_processor = Qwen2VLImageProcessor(size=size, patch_size=14, temporal_patch_size=2, merge_size=2)
    video_processor = Qwen2VLVideoProcessor(size=size, patch_size=14, temporal_patch_size=2, merge_size=2)
    return Qwen2_5_VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                               video_processor=video_processor, chat_template=CHAT_TEMPLATE)


def build_model(tokenizer, seed: int = 0):
    """A randomly initialised tiny Qwen2_5_VLForConditionalGeneration wired to ``tokenizer``'s ids."""
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS}
    text = dict(TEXT_CONFIG, vocab_size=len(tokenizer), bos_token_id=ids["<|endoftext|>"],
                eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    config = Qwen2_5_VLConfig(
        text_config=text, vision_config=dict(VISION_CONFIG),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Qwen2_5_VLForConditionalGeneration(config)
    model.generation_config.eos_token_id = [ids["<|im_end|>"], ids["<|endoftext|>"]]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.do_sample = False
    return model


def write_tiny(out: str | Path, seed: int = 0) -> Path:
    """Write the tiny model, tokenizer and processor to ``out`` as a plain HF directory (atomically)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".tmp-", dir=out.parent))
    try:
        tokenizer = build_tokenizer()
        processor = build_processor(tokenizer)
        model = build_model(tokenizer, seed=seed)
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / "tiny_model.json").write_text(json.dumps({"name": TINY_NAME, "version": TINY_VERSION, "seed": seed}))
        if out.exists():
            shutil.rmtree(out)
        tmp.replace(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def cache_dir() -> Path:
    """Where built models are cached: ``$SPATIALTREE_CACHE`` or ~/.cache/spatialtree."""
    return Path(os.environ.get("SPATIALTREE_CACHE", Path.home() / ".cache" / "spatialtree"))


def ensure_tiny(seed: int = 0) -> Path:
    """The cached tiny model directory, built on first use."""
    path = cache_dir() / f"{TINY_NAME}-v{TINY_VERSION}-seed{seed}"
    if not (path / "tiny_model.json").is_file():
        write_tiny(path, seed=seed)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch/tiny_model.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write the model to")
    parser.add_argument("--seed", type=int, default=0, help="weight-init seed")
    args = parser.parse_args(argv)
    path = write_tiny(args.out, seed=args.seed)
    print(f"wrote {TINY_NAME} to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
