"""fp32 master weights for the trainable parameters when the model is loaded in bf16/fp16 and no DeepSpeed runs.

``model.dtype: auto`` loads bf16 weights on a GPU. The HF Trainer without DeepSpeed hands those very tensors to
AdamW, which updates them in place: a bf16 weight keeps 8 significant bits, so an Adam step of about the learning
rate (1e-5 SFT, 1e-6 GRPO) is mostly rounded away (docs/PERFORMANCE.md, gpu-check ``bf16_update``). Casting the
trainable parameters to fp32 after freezing gives the optimizer fp32 weights to update, while the Trainer's
``bf16=True`` / ``fp16=True`` autocast still computes in half precision; frozen parameters (e.g. the vision tower)
stay in the load dtype to save memory. DeepSpeed's bf16/fp16 modes keep their own fp32 master copy (and cast the
module to half precision themselves), so there nothing is cast. LoRA adapters are fp32 already (peft's
``autocast_adapter_dtype=True`` default); a projector trained whole next to LoRA (peft ``modules_to_save``) is not,
and is cast here.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("train.precision")


@dataclass(frozen=True)
class UpcastDecision:
    """Whether the trainable parameters get fp32 master weights, and why (for the log line)."""

    upcast: bool
    reason: str


def decide_trainable_fp32(setting: bool | None, weights_dtype, deepspeed: str | None) -> UpcastDecision:
    """The rule behind ``model.trainable_fp32``: an explicit true/false wins; None (auto) upcasts when the weights
    were loaded in bf16/fp16 and the run has no DeepSpeed."""
    import torch

    half = weights_dtype in (torch.bfloat16, torch.float16)
    name = str(weights_dtype).replace("torch.", "")
    if setting is False:
        return UpcastDecision(False, "model.trainable_fp32=false: the optimizer updates the weights in their load "
                                     f"dtype ({name})")
    if setting is True:
        extra = " (DeepSpeed casts the module to its own precision when its bf16/fp16 mode is on)" if deepspeed else ""
        return UpcastDecision(True, f"model.trainable_fp32=true{extra}")
    if not half:
        return UpcastDecision(False, f"model.trainable_fp32=auto: the weights are {name} already")
    if deepspeed:
        return UpcastDecision(False, f"model.trainable_fp32=auto: train.deepspeed={deepspeed} keeps its own fp32 "
                                     "master weights")
    return UpcastDecision(True, f"model.trainable_fp32=auto: weights loaded in {name} and no DeepSpeed, so the "
                                "optimizer gets fp32 master weights (autocast still computes in "
                                f"{name}; an update of ~lr is below {name}'s resolution)")


def upcast_trainable(model) -> tuple[int, int, int]:
    """Cast every trainable floating-point parameter that is not fp32 to fp32, in place.

    Returns (parameters upcast, their tensors, frozen parameters left in half precision). Call after freezing and
    before the optimizer exists (it holds references to the parameter objects, whose ``data`` is replaced here).
    """
    import torch

    upcast = tensors = frozen_half = 0
    seen: set[int] = set()
    for param in model.parameters():
        if id(param) in seen or not param.is_floating_point() or param.dtype == torch.float32:
            continue
        seen.add(id(param))
        if param.requires_grad:
            param.data = param.data.to(torch.float32)
            upcast += param.numel()
            tensors += 1
        else:
            frozen_half += param.numel()
    return upcast, tensors, frozen_half


def apply_trainable_fp32(model, setting: bool | None, weights_dtype, deepspeed: str | None) -> int:
    """:func:`decide_trainable_fp32`, then :func:`upcast_trainable` when it says so; one log line either way.
    Returns the number of parameters upcast."""
    decision = decide_trainable_fp32(setting, weights_dtype, deepspeed)
    if not decision.upcast:
        log.info("trainable parameters stay in their load dtype: %s", decision.reason)
        return 0
    n, tensors, frozen_half = upcast_trainable(model)
    log.info("trainable parameters: %s upcast to fp32 (%d tensors), %s frozen stay in half precision: %s",
             f"{n:,}", tensors, f"{frozen_half:,}", decision.reason)
    return n
