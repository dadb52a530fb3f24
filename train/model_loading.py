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
from pathlib import Path

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


def pick_attn_implementation(requested: str, device: str) -> str:
    """``auto``: flash_attention_2 when flash-attn is installed and on CUDA, else sdpa (logged)."""
    has_flash = importlib.util.find_spec("flash_attn") is not None
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


def load_model(cfg: ModelConfig, device: str = "auto"):
    """The model on ``device`` in the dtype and attention implementation the recipe asks for."""
    from transformers import AutoModelForImageTextToText

    from train.models import family_for_checkpoint

    device = pick_device(device)
    path = resolve_model_path(cfg.name_or_path)
    if not Path(path).exists() and "/" not in path:
        raise ModelLoadError(f"model {cfg.name_or_path!r} is neither a local directory, a hub id, nor one of "
                             f"{', '.join(sorted(BUILDERS))}")
    family_for_checkpoint(path, download=True)  # UnsupportedFamily before any weight loads
    model = AutoModelForImageTextToText.from_pretrained(
        path, dtype=pick_dtype(cfg.dtype, device),
        attn_implementation=pick_attn_implementation(cfg.attn_implementation, device),
        trust_remote_code=cfg.trust_remote_code,
    )
    _drop_prefix_changes(model)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model.to(device)


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
