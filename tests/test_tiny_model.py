"""The embedded tiny Qwen2.5-VL: built locally, loaded through the same from_pretrained path."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(scope="module")
def loaded(tiny_model_dir):
    from train.config import ModelConfig
    from train.model_loading import load_model_and_processor

    return load_model_and_processor(ModelConfig(name_or_path="tiny-qwen2.5-vl"), device="cpu")


def test_loader_gives_the_real_classes(loaded):
    model, processor = loaded
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert type(processor).__name__ == "Qwen2_5_VLProcessor"
    assert type(processor.video_processor).__name__.startswith("Qwen2VLVideoProcessor")
    n = sum(p.numel() for p in model.parameters())
    assert n < 10_000_000


def test_image_plus_text_become_model_inputs(loaded):
    import torch

    model, processor = loaded
    img = Image.fromarray(np.full((56, 56, 3), 128, dtype=np.uint8))
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which is closer?"}]}]
    text = processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], images=[img], return_tensors="pt")
    image_id = model.config.image_token_id
    assert int((inputs["input_ids"] == image_id).sum()) == 4  # 56x56, patch 14, merge 2
    with torch.no_grad():
        out = model(**inputs)
    assert out.logits.shape[-1] == model.config.text_config.vocab_size
    assert torch.isfinite(out.logits).all()


def test_video_goes_through_the_real_video_processor(loaded):
    _, processor = loaded
    frames = [Image.fromarray(np.full((56, 56, 3), i * 40, dtype=np.uint8)) for i in range(4)]
    msgs = [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "What moved?"}]}]
    text = processor.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], videos=[frames], return_tensors="pt")
    assert inputs["video_grid_thw"].tolist() == [[2, 4, 4]]


def test_chat_template_marks_assistant_tokens(loaded):
    _, processor = loaded
    msgs = [{"role": "user", "content": [{"type": "text", "text": "hi"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "A"}]}]
    out = processor.apply_chat_template(msgs, tokenize=True, return_dict=True, return_assistant_tokens_mask=True)
    mask = out["assistant_masks"][0]
    ids = out["input_ids"][0]
    marked = processor.tokenizer.decode([i for i, m in zip(ids, mask) if m])
    assert marked == "A<|im_end|>"


@pytest.mark.slow
def test_cli_writes_a_plain_hf_directory(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "tiny"
    res = subprocess.run([sys.executable, "-m", "train.tiny", "--out", str(out)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(out)
    proc = AutoProcessor.from_pretrained(out)
    assert type(model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    assert hasattr(proc, "image_processor") and proc.tokenizer.chat_template


def test_building_twice_gives_identical_weights(tmp_path):
    import torch
    from safetensors.torch import load_file

    from train.tiny import write_tiny

    a = load_file(write_tiny(tmp_path / "a") / "model.safetensors")
    b = load_file(write_tiny(tmp_path / "b") / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
