"""ZeRO-3 across all visible GPUs (NCCL) trains to the same weights as one GPU without DeepSpeed.

Both sides are the real SFT path (``train.sft.run``, bench/gpu_check/zero3_child.py) on the embedded tiny model
in fp32 (so the only difference is the parallelism: sharded parameters, reduce-scatter of gradients across
ranks, gathered save), on the same micro-batches with different media on every rank. Compared: the final
weights (relative to how far training moved them) and the loss of every step. With one visible GPU the
ZeRO-3 side runs one process (the ZeRO-3 code path, no sharding across GPUs: said in ``exercised``). CPU smoke
mode: 2 gloo processes on the CPU against one.
"""

from __future__ import annotations

import json

from bench.gpu_check import inputs
from bench.gpu_check.children import run_child
from bench.gpu_check.record import CheckResult, Settings, Tolerance, rel_diff

NAME = "zero3"


def _weights(path):
    from safetensors.torch import load_file

    return {k: v.float() for k, v in load_file(str(path)).items()}


def _losses(run_dir) -> list[float]:
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r["train/loss"] for r in rows if "train/loss" in r]


def compare(start: dict, ref: dict, got: dict) -> dict:
    """How far the ZeRO-3 weights are from the reference's, against how far training moved the reference."""
    if got.keys() != ref.keys():
        raise RuntimeError(f"the two runs saved different tensors: {sorted(set(got) ^ set(ref))[:5]}")
    diff = sum(float((got[k] - ref[k]).pow(2).sum()) for k in ref) ** 0.5
    moved = sum(float((ref[k] - start[k]).pow(2).sum()) for k in ref) ** 0.5
    return {"weights_rel_update_diff": diff / moved if moved else float("inf"), "reference_update_norm": moved,
            "weights_max_abs_diff": max(float((got[k] - ref[k]).abs().max()) for k in ref), "tensors": len(ref)}


def run(settings: Settings) -> CheckResult:
    from train.tiny import TINY_NAME, ensure_tiny

    r = CheckResult(NAME, f"SFT under DeepSpeed ZeRO-3 on {settings.gpus} process(es) vs one process without "
                          "DeepSpeed, same micro-batches: final weights and per-step loss")
    why = ("project choice: fp32 with another reduction order (collective reduce-scatter vs one process's gradient "
           "accumulation) changes gradients at ~1e-7 relative; Adam divides by sqrt(v), so entries with near-zero "
           "gradients turn that into up to ~1e-4 of the update; 1e-3 of the update norm passes that, while a lost or "
           "double-counted rank (an O(1) share of the update) does not")
    r.tolerances = [Tolerance("weights_rel_update_diff", 1e-3, why), Tolerance("loss_rel_diff", 1e-4, why)]
    r.rule = ("||w_zero3 - w_ref|| / ||w_ref - w_start|| <= 1e-3 and every step's loss within 1e-4 (relative) of the "
              "reference's")
    device = settings.pick("cpu", "cuda")
    r.exercised = (f"CPU smoke stand-in: {settings.gpus} gloo processes (DeepSpeed CPU accelerator), not NCCL" if
                   settings.smoke else f"NCCL, DeepSpeed ZeRO-3 on {settings.gpus} GPU(s)" +
                   (" (one GPU visible: ZeRO-3's code path, no sharding across GPUs)" if settings.gpus == 1 else ""))
    c = inputs.corpus(settings)
    base = settings.workdir / "zero3"
    outs = {}
    for stage, nproc in (("none", None), ("zero3", settings.gpus)):
        out = base / stage
        run_child(settings, f"zero3_{stage}", "bench.gpu_check.zero3_child",
                  [str(out), str(c.root), stage, str(settings.gpus), device], nproc)
        outs[stage] = out
    if settings.model != TINY_NAME:
        r.exercised += f" (on {TINY_NAME}, not {settings.model}: the one-process fp32 reference must fit one device)"
    m = compare(_weights(ensure_tiny() / "model.safetensors"), _weights(outs["none"] / "model.safetensors"),
                _weights(outs["zero3"] / "model.safetensors"))
    ref_losses, got_losses = _losses(outs["none"]), _losses(outs["zero3"])
    m["losses_reference"], m["losses_zero3"] = ref_losses, got_losses
    m["loss_rel_diff"] = max((rel_diff(a, b) for a, b in zip(got_losses, ref_losses)), default=float("inf"))
    m["processes"] = settings.gpus
    m["headline"] = ["weights_rel_update_diff", "loss_rel_diff", "processes"]
    r.measured = m
    return r.decide({"weights_rel_update_diff": m["weights_rel_update_diff"] <= 1e-3,
                     "same number of logged steps": len(ref_losses) == len(got_losses) > 0,
                     "loss_rel_diff": m["loss_rel_diff"] <= 1e-4})
