"""LoRA on the language model only, merged into a plain Hugging Face checkpoint at the end."""

from __future__ import annotations

import json

import torch
from safetensors.torch import load_file
from sft_child import train_zoo


def test_lora_trains_lm_adapters_and_merges(tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "run"
    assert train_zoo(out, tmp_path / "zoo", ["train.max_steps=3", "train.save_steps=0", "model.lora.enabled=true",
                                             "model.lora.r=4", "model.lora.alpha=8", "model.lora.dropout=0.0"]) == 0
    adapter = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert "language_model" in adapter["target_modules"]  # a regex confined to the language model
    adapter_keys = load_file(str(out / "adapter" / "adapter_model.safetensors")).keys()
    assert any("lora_A" in k for k in adapter_keys)
    assert all("visual" not in k or "merger" in k for k in adapter_keys)  # no adapters in the vision tower

    from transformers import AutoModelForImageTextToText

    from train.tiny import ensure_tiny

    merged = AutoModelForImageTextToText.from_pretrained(out)  # a plain checkpoint: no peft needed
    assert not any("lora" in n for n, _ in merged.named_parameters())
    start, end = load_file(str(ensure_tiny() / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert start.keys() == end.keys()
    vision = [k for k in start if k.startswith("visual.") and ".merger." not in k]
    assert all(torch.equal(start[k], end[k]) for k in vision)
    q_proj = [k for k in start if "layers.0.self_attn.q_proj.weight" in k and not k.startswith("visual.")]
    assert q_proj and not torch.equal(start[q_proj[0]], end[q_proj[0]])  # adapter merged into the weight
    assert any(not torch.equal(start[k], end[k]) for k in start if ".merger." in k)  # projector trained whole
    assert torch.equal(start["model.embed_tokens.weight"], end["model.embed_tokens.weight"])  # no adapter there
