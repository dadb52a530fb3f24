"""LoRA through peft, on the language model only, and merging it into a plain checkpoint.

Adapters go on the linear layers named by ``model.lora.target_modules`` *inside the language
model* (a regex restricts them there: vision blocks have ``gate_proj``/``up_proj`` too). When the
projector is trained it is saved whole (peft ``modules_to_save``; a projector that is a list of modules, as
Qwen3-VL's DeepStack mergers, is listed module by module: peft cannot wrap a ModuleList).

    python launch/merge_lora.py --base BASE --adapter DIR --out OUT   # merge an adapter into a plain HF dir
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from train.module_groups import arch_of


def lm_target_regex(model, target_modules: list[str]) -> str:
    """A peft target regex matching ``target_modules`` under the language-model prefixes only."""
    arch = arch_of(model)
    roots = "|".join(re.escape(p.rstrip(".")) for p in arch.llm if not p.startswith("lm_head"))
    names = "|".join(re.escape(t) for t in target_modules)
    return rf"(?:.*\.)?(?:{roots})\..*\.(?:{names})"


def projector_modules(model) -> list[str]:
    """The projector's modules as peft ``modules_to_save`` names (suffixes of module names): each projector
    prefix's module, or each child of it when it is a container (ModuleList / ModuleDict)."""
    import torch

    arch = arch_of(model)
    modules = dict(model.named_modules())
    names = []
    for prefix in arch.projector:
        name = prefix.rstrip(".")
        module = modules.get(name)
        if isinstance(module, (torch.nn.ModuleList, torch.nn.ModuleDict)):
            names += [f"{name}.{child}" for child, _ in module.named_children()]
        else:
            names.append(name)
    return names


def wrap_lora(model, lora_cfg, freeze_cfg):
    """The model wrapped in a peft LoRA model (projector saved whole when it is trained)."""
    from peft import LoraConfig, get_peft_model

    modules_to_save = projector_modules(model) if not freeze_cfg.projector else None
    config = LoraConfig(r=lora_cfg.r, lora_alpha=lora_cfg.alpha, lora_dropout=lora_cfg.dropout,
                        target_modules=lm_target_regex(model, list(lora_cfg.target_modules)),
                        modules_to_save=modules_to_save, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def merge_adapter(base: str, adapter_dir: str | Path, out: str | Path, dtype: str = "fp32") -> Path:
    """Load ``base`` + the adapter in ``adapter_dir``, merge, and save a plain HF directory to ``out``."""
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from train.model_loading import pick_dtype, resolve_model_path

    path = resolve_model_path(base)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=pick_dtype(dtype, "cpu"))
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out = Path(out)
    merged.save_pretrained(out)
    AutoProcessor.from_pretrained(str(adapter_dir) if (Path(adapter_dir) / "preprocessor_config.json").exists()
                                  else path).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch/merge_lora.py", description="merge a LoRA adapter")
    parser.add_argument("--base", required=True)
    parser.add_argument("--adapter", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    print(f"merged into {merge_adapter(args.base, args.adapter, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
