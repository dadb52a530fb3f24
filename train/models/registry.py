"""Looking families up: by ``model_type``, loaded model, config, processor or checkpoint directory.

Importing this module imports every family module (each registers itself with :func:`train.models.base.register`);
a new family adds its import here.
"""

from __future__ import annotations

import json
from pathlib import Path

from train.models import internvl, qwen2_5_vl, qwen2_vl, qwen3_5, qwen3_5_moe, qwen3_vl, qwen3_vl_moe  # noqa: F401
from train.models.base import _REGISTRY, MODELS_DOC, ModelFamily, UnsupportedFamily


def supported() -> list[str]:
    """Every supported ``model_type``, sorted."""
    return sorted(_REGISTRY)


def families() -> list[ModelFamily]:
    """One instance per family, in registry order."""
    seen: dict[int, ModelFamily] = {}
    for fam in _REGISTRY.values():
        seen.setdefault(id(fam), fam)
    return list(seen.values())


def family_for_type(model_type: str | None, where: str = "model") -> ModelFamily:
    if model_type not in _REGISTRY:
        raise UnsupportedFamily(f"{where}: model_type {model_type!r} is not supported; supported: "
                                f"{', '.join(supported())} (see {MODELS_DOC} to add a family)")
    return _REGISTRY[model_type]


def family_for_model(model) -> ModelFamily:
    """The family of a loaded model (possibly wrapped by peft or a DeepSpeed engine)."""
    inner = getattr(model, "module", None)
    model = inner if inner is not None and hasattr(inner, "config") else model
    config = getattr(model, "config", None)
    return family_for_type(getattr(config, "model_type", None), type(model).__name__)


def family_for_processor(processor) -> ModelFamily:
    """The family of a processor: the one :func:`train.model_loading.load_processor` recorded on it, else the
    family of the checkpoint it was loaded from (its tokenizer's ``name_or_path``)."""
    family = getattr(processor, "model_family", None)
    if family is not None:
        return family
    tok = getattr(processor, "tokenizer", processor)
    where = getattr(tok, "name_or_path", None) or getattr(processor, "name_or_path", None)
    if not where:
        raise UnsupportedFamily(f"{type(processor).__name__}: cannot tell its model family (load it with "
                                "train.model_loading.load_processor or from a checkpoint directory)")
    return family_for_checkpoint(str(where))


def family_for_config(config) -> ModelFamily:
    return family_for_type(getattr(config, "model_type", None), type(config).__name__)


def config_json(path: str) -> Path | None:
    """The checkpoint's config.json: a tiny model's (built on first use), a local directory's, or a hub id's
    from the local Hugging Face cache; None when none of these has it."""
    from train.tiny import resolve_tiny

    local = Path(resolve_tiny(path))
    if local.is_dir():
        found = local / "config.json"
        return found if found.is_file() else None
    if "/" in path and not local.exists():
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(path, "config.json")
        except Exception:  # not a valid repo id
            return None
        return Path(cached) if isinstance(cached, str) else None
    return None


def family_for_checkpoint(path: str, download: bool = False) -> ModelFamily:
    """The family of a checkpoint from its ``config.json`` alone (no weights, no model class import).

    ``path``: a tiny-model name, a local directory or a hub id in the local Hugging Face cache (``download``:
    or fetched from the hub, config.json only)."""
    config_file = config_json(path)
    if config_file is None and download and "/" in path and not Path(path).exists():
        try:
            from huggingface_hub import hf_hub_download

            config_file = Path(hf_hub_download(path, "config.json"))
        except Exception:  # offline, no such repo: reported below
            config_file = None
    if config_file is None:
        raise UnsupportedFamily(f"{path}: no config.json (a model is a local directory, a hub id or one of the "
                                f"tiny models; see {MODELS_DOC})")
    try:
        model_type = json.loads(config_file.read_text()).get("model_type")
    except (OSError, ValueError) as exc:
        raise UnsupportedFamily(f"{config_file}: unreadable config.json ({exc})") from None
    return family_for_type(model_type, str(path))


def render_chat(processor, messages: list, *, add_generation_prompt: bool = False, thinking: bool = False) -> str:
    """:meth:`ModelFamily.render_chat` of the processor's family (the chat template with the family's arguments)."""
    return family_for_processor(processor).render_chat(processor, messages, add_generation_prompt=add_generation_prompt,
                                                       thinking=thinking)
