"""Model and processor loading, shared by SFT, GRPO and evaluation.

One path for every checkpoint: an embedded tiny model (``tiny-qwen2.5-vl``, ``tiny-qwen3-vl``, ... see
train/tiny/) is first written to the cache as a plain Hugging Face directory, then loaded with
``from_pretrained`` like any hub id or local path. The model class comes from the checkpoint's config
(AutoModelForImageTextToText), never from a substring of the path; the model family (train/models/) is read
from config.json before any weight loads, and an unsupported ``model_type`` stops there.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from train import zero3_conversions
from train.config import ModelConfig
from train.tiny import BUILDERS, resolve_tiny

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The checkpoint or its processor cannot be used; the message says which and why."""


def resolve_model_path(name_or_path: str) -> str:
    """A tiny model name (``tiny-qwen2.5-vl`` ...) -> its cached directory (built on first use); anything else
    unchanged."""
    return resolve_tiny(name_or_path)


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("train.device=cuda but torch sees no CUDA device")
    return requested


def pick_dtype(requested: str, device: str):
    """``auto``: bf16 on GPU, fp32 on CPU. bf16/fp16 asked for on CPU fall back to fp32, logged."""
    import torch

    table = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    if requested == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    if device == "cpu" and requested != "fp32":
        log.warning("model.dtype=%s on CPU: using fp32 instead", requested)
        return torch.float32
    return table[requested]


def flash_attn_installed() -> bool:
    """Whether the flash-attn package is importable (it only runs on CUDA)."""
    return importlib.util.find_spec("flash_attn") is not None


def pick_attn_implementation(requested: str, device: str) -> str:
    """``auto``: flash_attention_2 when flash-attn is installed and the run computes on CUDA, else sdpa (logged).

    ``device`` is where the run computes, not where the weights are first placed: under DeepSpeed the model is
    loaded on the CPU and moved by DeepSpeed, and still gets flash-attention on a GPU machine.
    ``flash_varlen_standin`` (train/flash_standin.py) is registered here and kept on any device."""
    if requested == "flash_varlen_standin":
        from train import flash_standin

        return flash_standin.register()
    has_flash = flash_attn_installed()
    if requested == "auto":
        choice = "flash_attention_2" if (has_flash and device == "cuda") else "sdpa"
        why = "flash-attn installed and CUDA present" if choice == "flash_attention_2" else (
            "flash-attn not installed" if not has_flash else "no CUDA device")
        log.info("attention: %s (%s)", choice, why)
        return choice
    if requested == "flash_attention_2" and not (has_flash and device == "cuda"):
        log.warning("attention: flash_attention_2 asked for but %s; using sdpa",
                    "flash-attn is not installed" if not has_flash else "there is no CUDA device")
        return "sdpa"
    return requested


@dataclass(frozen=True)
class LoadedAttention:
    """The one decision on attention and weights dtype, made where the model is loaded (:func:`load_model`) and
    recorded on the model (``model.loaded_attention``; transformers keeps the implementation in
    ``config._attn_implementation``, which :func:`attention_of` reads). The packing collator prepares its batches
    for this implementation: it never decides again."""

    implementation: str
    dtype: Any
    compute_device: str
    """``cuda`` or ``cpu``: what the decision was made for (the weights may first be placed on the CPU)."""


def decide_attention(cfg: ModelConfig, compute_device: str) -> LoadedAttention:
    """Attention implementation and dtype for a run computing on ``compute_device``."""
    return LoadedAttention(pick_attn_implementation(cfg.attn_implementation, compute_device),
                           pick_dtype(cfg.dtype, compute_device), compute_device)


def attention_of(model) -> str:
    """The attention implementation ``model`` was loaded with (through a LoRA wrapper too)."""
    return model.config._attn_implementation


def configs_of(model) -> list:
    """The model's config and every sub-config (Qwen-VL: text_config, vision_config), each once."""
    found, todo = [], [model.config]
    while todo:
        cfg = todo.pop()
        if cfg is None or any(cfg is f for f in found):
            continue
        found.append(cfg)
        todo.extend(getattr(cfg, key, None) for key in getattr(cfg, "sub_configs", {}) or {})
    return found


def disable_cache(model) -> int:
    """``use_cache=False`` on every config the model has (outer, text, vision), for training; returns how many.

    The Trainer turns it off on the outer config only; Qwen-VL's language model reads its text_config, whose
    True makes it build a DynamicCache in every training forward, and with a cache transformers skips
    packed-sequence detection from position ids (issue 27: up to 0.98 logit error on a packed row without mask).
    Generation is unaffected: ``generate`` takes use_cache from the generation config."""
    configs = configs_of(model)
    for cfg in configs:
        cfg.use_cache = False
    return len(configs)


def load_processor(cfg: ModelConfig):
    """The checkpoint's multimodal processor; a bare tokenizer is an error, not a silent fallback."""
    from transformers import AutoProcessor

    from train.models import family_for_checkpoint

    path = resolve_model_path(cfg.name_or_path)
    processor = AutoProcessor.from_pretrained(path, trust_remote_code=cfg.trust_remote_code)
    if not hasattr(processor, "image_processor"):
        raise ModelLoadError(
            f"{cfg.name_or_path}: AutoProcessor returned {type(processor).__name__}, not a multimodal processor "
            "(is preprocessor_config.json / processor_config.json missing from the checkpoint?)")
    processor.model_family = family_for_checkpoint(path, download=True)  # what collation, counting and evaluation ask
    return processor


def load_model(cfg: ModelConfig, device: str = "auto", place_on: str | None = None):
    """The model in the dtype and attention implementation decided for computing on ``device``
    (:func:`decide_attention`), placed on ``place_on`` (default ``device``; ``cpu`` under DeepSpeed, which moves
    the model itself). The decision is kept as ``model.loaded_attention``."""
    from transformers import AutoModelForImageTextToText

    from train.models import family_for_checkpoint

    device = pick_device(device)
    path = resolve_model_path(cfg.name_or_path)
    if not Path(path).exists() and "/" not in path:
        raise ModelLoadError(f"model {cfg.name_or_path!r} is neither a local directory, a hub id, nor one of "
                             f"{', '.join(sorted(BUILDERS))}")
    family_for_checkpoint(path, download=True)  # UnsupportedFamily before any weight loads
    decided = decide_attention(cfg, device)
    zero3_conversions.install()  # expert-weight conversions see full shapes under ZeRO-3 (load and save)
    model = AutoModelForImageTextToText.from_pretrained(
        path, dtype=decided.dtype, attn_implementation=decided.implementation,
        trust_remote_code=cfg.trust_remote_code,
    )
    if attention_of(model) != decided.implementation:
        raise ModelLoadError(f"{cfg.name_or_path}: asked transformers for attention {decided.implementation!r}, "
                             f"got {attention_of(model)!r}")
    model.loaded_attention = decided
    _drop_prefix_changes(model)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.to(place_on or device)


def _drop_prefix_changes(model) -> None:
    """Save with the same tensor names as a plain load does.

    Loaded under DeepSpeed ZeRO-3 (zero.Init), transformers records its legacy renamings and prefix
    changes among the weight conversions it reverts on save; Qwen-VL checkpoints then come out as
    ``model.model.layers.*`` instead of ``model.layers.*``. from_pretrained reads both, other tools
    (vLLM) expect the latter. The conversions of a plain load are the non-legacy ones without
    PrefixChange: use those.
    """
    if getattr(model, "_weight_conversions", None) is None:
        return
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import PrefixChange

    plain = [c for c in get_model_conversion_mapping(model, add_legacy=False) if not isinstance(c, PrefixChange)]
    model._weight_conversions = plain or None


def load_model_and_processor(cfg: ModelConfig, device: str = "auto"):
    return load_model(cfg, device), load_processor(cfg)
