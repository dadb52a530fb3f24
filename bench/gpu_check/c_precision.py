"""Precision: bf16 against fp32 on the same weights and batch.

``bf16_loss``: loss and gradients of one forward/backward in bf16 vs fp32 (sdpa on both: flash-attn has no
fp32). ``bf16_update``: a few optimizer steps at the recipes' learning rates, the way a run without DeepSpeed
trains on a GPU: weights loaded in bf16 (``model.dtype: auto`` on CUDA, train/model_loading.py), the trainable ones
upcast to fp32 by ``train.precision`` (``model.trainable_fp32`` auto), ``train.module_groups.build_optimizer``'s AdamW
under bf16 autocast (the Trainer's ``bf16=True``). For information it also measures the raw case the upcast exists
for: bf16 weights updated in place with no fp32 master copy. An Adam step moves a weight by about the learning
rate; a bf16 weight keeps 8 significant bits, so a step smaller than half its spacing (2^-9 of the weight, e.g.
2e-5 at 0.01) is rounded away.

Both run in CPU smoke mode too (torch does bf16 on CPU); the arithmetic is the same, the kernels are not.
"""

from __future__ import annotations

import copy

from bench.gpu_check import inputs
from bench.gpu_check.record import CheckResult, Settings, Tolerance, rel_diff

LOSS_NAME = "bf16_loss"
UPDATE_NAME = "bf16_update"
STEPS = 3
CONTROL_LR = 1e-3
"""A learning rate whose updates bf16 can hold: its ratio near 1 shows the measurement itself is sound."""


def _batch(settings: Settings, processor):
    from train.collate import pad_batch

    enc = inputs.encoder(settings, processor)
    return pad_batch([enc.encode(s) for s in inputs.samples(settings, *settings.pick((3, 1), (8, 2)))], enc.pad_id)


def _models(settings: Settings):
    import torch

    m32, processor = inputs.load(settings, "fp32", "sdpa")
    m32.eval()
    m16 = copy.deepcopy(m32).to(torch.bfloat16)
    return m32, m16, processor


def loss_check(settings: Settings, m32, m16, batch) -> CheckResult:
    r = CheckResult(LOSS_NAME, "one forward/backward of the same batch and weights in bf16 vs fp32: loss and gradients")
    why = ("project choice: bf16 rounds every activation to 8 significant bits (0.4%); the token-mean loss averages "
           "much of that out, so 1% of the loss (a few roundings) passes, while a broken bf16 path (overflow, a mask "
           "in the wrong dtype, an fp32-only kernel fallback that changes the math) does not")
    r.tolerances = [Tolerance("loss_rel_diff", 1e-2, why), Tolerance("grad_cosine_min", 0.99, why)]
    r.rule = "loss_rel_diff <= 1e-2, grad_cosine >= 0.99, bf16 loss and gradients finite"
    r.exercised = f"sdpa, bf16 vs fp32 weights (bf16 = a cast copy of the fp32 model), {settings.device}" + (
        " (CPU smoke: torch's CPU bf16 kernels, not the GPU's)" if settings.smoke else "")
    losses, grads = {}, {}
    for name, model in (("fp32", m32), ("bf16", m16)):
        dtype = next(model.parameters()).dtype
        model.zero_grad(set_to_none=True)
        loss = model(**inputs.to_device(batch, settings.device, dtype)).loss
        loss.backward()
        losses[name] = float(loss.detach().float())
        grads[name] = inputs.trainable_grads(model)
        model.zero_grad(set_to_none=True)
    m = {"loss_fp32": losses["fp32"], "loss_bf16": losses["bf16"],
         "loss_rel_diff": rel_diff(losses["bf16"], losses["fp32"])}
    m.update(inputs.compare_grads(grads["bf16"], grads["fp32"]))
    m["headline"] = ["loss_rel_diff", "grad_cosine"]
    r.measured = m
    finite = m["grad_finite"] and m["loss_bf16"] == m["loss_bf16"] and abs(m["loss_bf16"]) != float("inf")
    return r.decide({"loss_rel_diff": m["loss_rel_diff"] <= 1e-2, "grad_cosine": m["grad_cosine"] >= 0.99,
                     "finite": finite})


def adam_steps(model, batch, device, lr: float, autocast=None) -> dict:
    """STEPS AdamW steps (the project's optimizer, constant lr) on ``batch``, under ``torch.autocast(device type,
    autocast)`` when given (what the Trainer's ``bf16=True`` does): name -> fp32 change of every trainable weight."""
    import contextlib

    import torch

    from train.config import OptimConfig
    from train.module_groups import build_optimizer

    data = inputs.to_device(batch, device, model.dtype)  # pixel values in the vision tower's dtype
    before = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = build_optimizer(model, OptimConfig(lr=lr))
    device_type = torch.device(device).type
    for _ in range(STEPS):
        with torch.autocast(device_type, dtype=autocast) if autocast is not None else contextlib.nullcontext():
            loss = model(**data).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return {n: p.detach().float() - before[n] for n, p in model.named_parameters() if p.requires_grad}


def update_ratio(moved: dict, ref: dict) -> tuple[float, float]:
    """(||moved|| / ||ref||, share of the weights ``ref`` changes that ``moved`` leaves exactly unchanged)."""
    norm = {k: sum(float(d.pow(2).sum()) for d in v.values()) ** 0.5 for k, v in (("got", moved), ("ref", ref))}
    changed = sum(int((d != 0).sum()) for d in ref.values())
    lost = sum(int(((ref[n] != 0) & (moved[n] == 0)).sum()) for n in ref)
    return (norm["got"] / norm["ref"] if norm["ref"] else float("inf")), (lost / changed if changed else 0.0)


def project_bf16_model(m16):
    """A copy of the bf16 model prepared as train.run.prepare_model does for a GPU run without DeepSpeed:
    ``model.trainable_fp32`` auto (train/precision.py) upcasts the trainable parameters to fp32."""
    import torch

    from train.precision import apply_trainable_fp32

    model = copy.deepcopy(m16)
    upcast = apply_trainable_fp32(model, None, torch.bfloat16, None)
    return model, upcast


def _recipe_lrs() -> dict[str, float]:
    """The learning rates the recipes train with: SFT (schema default = recipes/base/sft_base.yaml) and GRPO."""
    from train.recipe import load_recipe

    return {"sft": float(load_recipe(None).optim.lr), "grpo": float(load_recipe("auto_think").optim.lr)}


def update_check(settings: Settings, m32, m16, batch) -> CheckResult:
    import torch

    r = CheckResult(UPDATE_NAME, f"{STEPS} AdamW steps at the recipes' learning rates the way a GPU run without "
                                 "DeepSpeed trains (bf16 load, trainable parameters upcast to fp32 by "
                                 "train.precision, bf16 autocast) vs fp32: how much of the update survives")
    why = ("project choice: Adam's step size is set by the learning rate, not by the precision, so bf16 should move "
           "the weights about as far as fp32 (ratio near 1); below 0.8 a fifth or more of the update was rounded away")
    r.tolerances = [Tolerance("update_norm_ratio_min", 0.8, why), Tolerance("update_norm_ratio_max", 1.25, why)]
    r.rule = ("||w_project after - before|| / ||w_fp32 after - before|| within [0.8, 1.25] at every recipe learning "
              f"rate and at the control learning rate {CONTROL_LR:g}; raw_* (bf16 weights updated in place, no fp32 "
              "master copy) are measured for information only")
    r.exercised = (f"train.precision.apply_trainable_fp32 (model.trainable_fp32 auto) on bf16 weights, "
                   f"train.module_groups.build_optimizer's AdamW, torch.autocast bf16, {STEPS} steps, {settings.device}"
                   "; raw: the same bf16 weights updated in place without autocast")
    m, ok = {}, {}
    for recipe, lr in {**_recipe_lrs(), "control": CONTROL_LR}.items():
        ref = adam_steps(copy.deepcopy(m32), batch, settings.device, lr)
        project, m["upcast_params"] = project_bf16_model(m16)
        ratio, lost = update_ratio(adam_steps(project, batch, settings.device, lr, autocast=torch.bfloat16), ref)
        raw_ratio, raw_lost = update_ratio(adam_steps(copy.deepcopy(m16), batch, settings.device, lr), ref)
        del project
        m[f"{recipe}_lr"] = lr
        m[f"{recipe}_update_norm_ratio"], m[f"{recipe}_lost_update_share"] = ratio, lost
        m[f"raw_{recipe}_update_norm_ratio"], m[f"raw_{recipe}_lost_update_share"] = raw_ratio, raw_lost
        ok[f"{recipe} lr {lr:g}: update ratio {ratio:.2f}"] = 0.8 <= ratio <= 1.25
    m["headline"] = ["sft_update_norm_ratio", "grpo_update_norm_ratio", "raw_sft_update_norm_ratio",
                     "raw_grpo_update_norm_ratio"]
    r.measured = m
    return r.decide(ok)


def run(settings: Settings) -> list[CheckResult]:
    m32, m16, processor = _models(settings)
    batch = _batch(settings, processor)
    results = [loss_check(settings, m32, m16, batch), update_check(settings, m32, m16, batch)]
    del m32, m16
    inputs.free(settings)
    return results
