"""Freezing and per-group learning rates over the vision encoder, the projector and the language model.

Which parameter belongs to which group is the model family's answer (``groups`` in train/models/, keyed by the
checkpoint's ``config.model_type``, never by a substring of the path). Freezing,
the optimizer's parameter groups (separate learning rates for vision, projector and language model)
and the start-of-run summary all read it; SFT and GRPO share it.
"""

from __future__ import annotations

from train.models.base import GROUPS, ModuleGroups, UnsupportedFamily

ArchModules = ModuleGroups  # the prefixes of one family (train/models/<family>.py: ``groups``)
UnsupportedArchitecture = UnsupportedFamily


def arch_of(model) -> ModuleGroups:
    """The module groups of ``model``'s family (a transformers model, possibly wrapped by peft)."""
    from train.models import family_for_model

    return family_for_model(model).groups


def canonical_name(name: str) -> str:
    """A parameter name without peft's wrapping (``base_model.model.``) and LoRA's ``.base_layer``."""
    if name.startswith("base_model.model."):
        name = name[len("base_model.model."):]
    return name.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".").replace(
        ".original_module.", ".")


def group_of(name: str, arch: ArchModules) -> str:
    """``vision``, ``projector`` or ``llm`` for a parameter name; an unknown name is an error."""
    name = canonical_name(name)
    for prefix, group in arch.prefixes():
        if name.startswith(prefix):
            return group
    raise UnsupportedArchitecture(f"parameter {name!r} matches no module group of its model family (train/models/)")


def apply_freeze(model, freeze) -> dict[str, dict[str, int]]:
    """Set ``requires_grad`` per group from a FreezeConfig; return :func:`param_counts`.

    LoRA parameters (names containing ``lora_``) are left as peft set them: with LoRA the language
    model's base weights are frozen and its adapters train, whatever ``freeze.llm`` says.
    """
    arch = arch_of(model)
    lora = any("lora_" in name for name, _ in model.named_parameters())
    frozen = {"vision": freeze.vision, "projector": freeze.projector, "llm": freeze.llm or lora}
    for name, param in model.named_parameters():
        if "lora_" in name:
            continue
        if ".original_module." in name:  # peft's untouched copy of a modules_to_save module
            param.requires_grad_(False)
            continue
        param.requires_grad_(not frozen[group_of(name, arch)])
    return param_counts(model)


def param_counts(model) -> dict[str, dict[str, int]]:
    """Per group: total and trainable parameter counts."""
    arch = arch_of(model)
    counts = {g: {"total": 0, "trainable": 0} for g in GROUPS}
    seen: set[int] = set()
    for name, param in model.named_parameters():
        if id(param) in seen:
            continue
        seen.add(id(param))
        group = group_of(name, arch)
        n = param.ds_numel if hasattr(param, "ds_numel") else param.numel()  # ZeRO-3 partitioned params
        counts[group]["total"] += n
        if param.requires_grad:
            counts[group]["trainable"] += n
    return counts


def format_counts(counts: dict[str, dict[str, int]]) -> str:
    """A small table of trainable parameters per group, printed at the start of every run."""
    lines = [f"{'group':<10}{'trainable':>14}{'total':>14}"]
    for group in GROUPS:
        c = counts[group]
        lines.append(f"{group:<10}{c['trainable']:>14,}{c['total']:>14,}")
    total = sum(c["total"] for c in counts.values())
    trainable = sum(c["trainable"] for c in counts.values())
    lines.append(f"{'all':<10}{trainable:>14,}{total:>14,}")
    return "\n".join(lines)


def _no_decay(name: str, param) -> bool:
    return param.ndim < 2 or "norm" in name.lower() or name.endswith(".bias")


def param_groups(model, optim) -> list[dict]:
    """AdamW parameter groups: one per (module group, decay or not), trainable parameters only.

    Learning rates: ``optim.vision_lr`` / ``optim.projector_lr`` / ``optim.lr``. Frozen parameters
    are left out, so they get no optimizer state. Each group carries a ``name`` for logging.
    """
    arch = arch_of(model)
    lrs = {"vision": optim.vision_lr, "projector": optim.projector_lr, "llm": optim.lr}
    lrs = {g: optim.lr if lr is None else lr for g, lr in lrs.items()}  # unfinalized config: None = lr
    buckets: dict[tuple[str, bool], list] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        key = (group_of(name, arch), _no_decay(name, param))
        buckets.setdefault(key, []).append(param)
    groups = []
    for (group, no_decay), params in sorted(buckets.items()):
        groups.append({
            "name": f"{group}{'_no_decay' if no_decay else ''}",
            "params": params,
            "lr": float(lrs[group]),
            "weight_decay": 0.0 if no_decay else float(optim.weight_decay),
        })
    return groups


def build_optimizer(model, optim):
    """AdamW over :func:`param_groups` (frozen parameters get no optimizer state); shared by SFT and GRPO."""
    import torch

    groups = param_groups(model, optim)
    if not groups:
        raise ValueError("nothing to train: every parameter is frozen (model.freeze.* and model.lora)")
    return torch.optim.AdamW(groups, lr=float(optim.lr), betas=tuple(float(b) for b in optim.betas), eps=1e-8)
