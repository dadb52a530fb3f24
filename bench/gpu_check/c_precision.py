"""Precision: bf16 against fp32 on the same weights and batch.

``bf16_loss``: loss and gradients of one forward/backward in bf16 vs fp32 (sdpa on both: flash-attn has no
fp32). ``bf16_update``: a few optimizer steps at the recipes' learning rates, the way a run without DeepSpeed
trains on a GPU: weights in bf16 (``model.dtype: auto`` on CUDA, train/model_loading.py) and
``train.module_groups.build_optimizer``'s AdamW updating them in place, with no fp32 master copy (DeepSpeed's bf16
mode keeps one; the HF Trainer without DeepSpeed does not). An Adam step moves a weight by about the learning
rate; a bf16 weight keeps 8 significant bits, so a step smaller than half its spacing (2^-9 of the weight, e.g.
2e-5 at 0.01) is rounded away. The check measures how much of fp32's update survives.

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


def _update(model, batch, device, lr: float) -> tuple[dict, dict]:
    """STEPS AdamW steps (the project's optimizer, constant lr) on ``batch``: weights before, after (fp32 copies)."""
    from train.config import OptimConfig
    from train.module_groups import build_optimizer

    dtype = next(model.parameters()).dtype
    data = inputs.to_device(batch, device, dtype)
    before = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}
    optimizer = build_optimizer(model, OptimConfig(lr=lr))
    for _ in range(STEPS):
        model(**data).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    after = {n: p.detach().float().clone() for n, p in model.named_parameters() if p.requires_grad}
    return before, after


def _recipe_lrs() -> dict[str, float]:
    """The learning rates the recipes train with: SFT (schema default = recipes/base/sft_base.yaml) and GRPO."""
    from train.recipe import load_recipe

    return {"sft": float(load_recipe(None).optim.lr), "grpo": float(load_recipe("auto_think").optim.lr)}


def update_check(settings: Settings, m32, m16, batch) -> CheckResult:
    r = CheckResult(UPDATE_NAME, f"{STEPS} AdamW steps at the recipes' learning rates on bf16 weights (no fp32 master "
                                 "copy: a GPU run without DeepSpeed) vs fp32 weights: how much of the update survives")
    why = ("project choice: Adam's step size is set by the learning rate, not by the precision, so bf16 should move "
           "the weights about as far as fp32 (ratio near 1); below 0.8 a fifth or more of the update was rounded away")
    r.tolerances = [Tolerance("update_norm_ratio_min", 0.8, why), Tolerance("update_norm_ratio_max", 1.25, why)]
    r.rule = ("||w_bf16 after - before|| / ||w_fp32 after - before|| within [0.8, 1.25] at every recipe learning rate "
              f"and at the control learning rate {CONTROL_LR:g}")
    r.exercised = (f"bf16 weights updated in place by train.module_groups.build_optimizer's AdamW, {STEPS} steps, "
                   f"{settings.device}")
    m, ok = {}, {}
    for recipe, lr in {**_recipe_lrs(), "control": CONTROL_LR}.items():
        moved = {}
        for name, model in (("fp32", m32), ("bf16", m16)):
            before, after = _update(copy.deepcopy(model), batch, settings.device, lr)
            moved[name] = {n: after[n] - before[n] for n in before}
        norm = {k: sum(float(d.pow(2).sum()) for d in v.values()) ** 0.5 for k, v in moved.items()}
        changed32 = sum(int((d != 0).sum()) for d in moved["fp32"].values())
        lost = sum(int(((moved["fp32"][n] != 0) & (moved["bf16"][n] == 0)).sum()) for n in moved["fp32"])
        ratio = norm["bf16"] / norm["fp32"] if norm["fp32"] else float("inf")
        m[f"{recipe}_lr"] = lr
        m[f"{recipe}_update_norm_ratio"] = ratio
        m[f"{recipe}_lost_update_share"] = lost / changed32 if changed32 else 0.0
        ok[f"{recipe} lr {lr:g}: update ratio {ratio:.2f}"] = 0.8 <= ratio <= 1.25
    m["headline"] = [k for k in m if k.endswith("_update_norm_ratio") and not k.startswith("control")]
    r.measured = m
    return r.decide(ok)


def run(settings: Settings) -> list[CheckResult]:
    m32, m16, processor = _models(settings)
    batch = _batch(settings, processor)
    results = [loss_check(settings, m32, m16, batch), update_check(settings, m32, m16, batch)]
    del m32, m16
    inputs.free(settings)
    return results
