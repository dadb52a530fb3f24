"""The family test matrix's rows and shared, session-scoped pieces (tests/test_families*.py).

One row per model family: its tiny model (train/tiny/) and the ``model_type`` it must report. Adding a family
adds one row here; every matrix test is parametrized over :data:`ROWS` (or a documented subset).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

ROWS = [  # (tiny model, model_type)
    ("tiny-qwen2-vl", "qwen2_vl"),
    ("tiny-qwen2.5-vl", "qwen2_5_vl"),
    ("tiny-qwen3-vl", "qwen3_vl"),
    ("tiny-qwen3-vl-moe", "qwen3_vl_moe"),
]
NAMES = [name for name, _ in ROWS]
MODEL_TYPE = dict(ROWS)


@dataclass
class Loaded:
    name: str
    model_type: str
    model: object
    processor: object

    @property
    def family(self):
        from train.models import family_for_model

        return family_for_model(self.model)


_LOADED: dict[str, Loaded] = {}


def load(name: str) -> Loaded:
    """The tiny model ``name`` and its processor, loaded once per test process (fp32, CPU, sdpa)."""
    if name not in _LOADED:
        from train.config import ModelConfig
        from train.model_loading import load_model_and_processor

        model, processor = load_model_and_processor(ModelConfig(name_or_path=name, attn_implementation="sdpa"),
                                                    device="cpu")
        _LOADED[name] = Loaded(name, MODEL_TYPE[name], model, processor)
    return _LOADED[name]


@pytest.fixture(scope="session", params=NAMES)
def loaded(request) -> Loaded:
    return load(request.param)


def encoded_length(processor, sample, data) -> int:
    """input_ids length of ``sample`` as training (an SFT sample) or a rollout (a prompt) encodes it (rendered by the
    family, thinking off, as collation, GRPO and evaluation render)."""
    from data_mix.media import load_media, processor_media_kwargs
    from train.models import render_chat

    prompt_only = sample.messages[-1]["role"] != "assistant"
    text = render_chat(processor, sample.messages, add_generation_prompt=prompt_only)
    images, videos = load_media(sample, data)
    out = processor(text=[text], **processor_media_kwargs(images, videos, data.video_fps))
    return len(out["input_ids"][0])
