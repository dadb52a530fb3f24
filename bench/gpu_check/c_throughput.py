"""Throughput: tokens/s per GPU and MFU of SFT and GRPO steps, next to the anchors (bench/gpu_check/anchors.py).

Each is a short run of the project's own trainer on one GPU (``torchrun --nproc_per_node 1``,
bench/gpu_check/step_child.py): SFT on the benchmark corpus, packed, the recipe's GPU defaults (bf16,
flash-attn when installed); GRPO with the auto_think recipe, 4 completions per prompt, vLLM when installed
(``grpo.use_vllm``), HF generate otherwise. One warm-up step, then ``--steps`` timed steps. No pass threshold:
a check passes when it measured finite, positive numbers; what they mean is read against the anchors, which
are comparable only for a Qwen2.5-VL-7B-class model (``--model``).
"""

from __future__ import annotations

import json

from bench.gpu_check import anchors, flops
from bench.gpu_check.children import run_child
from bench.gpu_check.record import CheckResult, Settings


def step_flops(shape: flops.ModelShape, micro: dict) -> tuple[float, float]:
    """(training FLOPs, all FLOPs incl. rollout and log-prob forwards) of one micro-batch's stats."""
    tokens = float(sum(micro["lengths"]))
    sq = float(sum(s * s for s in micro["lengths"]))
    train = flops.training_flops(shape, tokens, sq, micro["patches"])
    return train, train + micro["forward_passes"] * flops.forward_flops(shape, tokens, sq, micro["patches"])


def summarize(meter: dict, peak: flops.Peak) -> dict:
    """tokens/s per GPU, MFU (all model FLOPs of the step, and the update's alone) over the timed steps."""
    shape = flops.ModelShape(**meter["shape"])
    steps = meter["steps"]
    warm = meter["warm"]
    if warm < 1 or len(steps) < warm + 1:
        raise RuntimeError(f"{len(steps)} steps recorded with {warm} warm-up: need a warm-up step and a timed one")
    timed = steps[warm:]  # their time: from the end of the last warm-up step to the end of the last step
    seconds = timed[-1]["end"] - steps[warm - 1]["end"]
    micro = [m for s in timed for m in s["micro_batches"]]
    tokens = sum(sum(m["lengths"]) for m in micro)
    train_f, all_f = (sum(x) for x in zip(*(step_flops(shape, m) for m in micro)))
    out = {"timed_steps": len(timed), "seconds": seconds, "tokens": tokens, "seconds_per_step": seconds / len(timed),
           "tokens_per_s_per_gpu": tokens / seconds, "model_tflops_per_s": all_f / seconds / 1e12,
           "mfu": flops.mfu(all_f, seconds, 1, peak), "mfu_update_only": flops.mfu(train_f, seconds, 1, peak),
           "n_llm": shape.n_llm, "n_vision": shape.n_vision, "device_name": meter["device_name"],
           "dtype": meter["dtype"], "attn_implementation": meter["attn_implementation"],
           "completion_tokens": sum(m["completion_tokens"] for m in micro),
           "comparable_to_anchors": anchors.comparable(meter["model_type"], shape.n_llm)}
    if "rollouts" in meter:
        out["rollouts"] = meter["rollouts"]
    out["patches"] = sum(m["patches"] for m in micro)
    out["packed"] = any(m.get("packed", False) for m in micro)
    return out


def run_kind(settings: Settings, kind: str, peak: flops.Peak) -> CheckResult:
    from bench import workload
    from bench.gpu_check import inputs

    what = {"sft": "SFT step (packed unless the family refuses packing, the recipe's GPU dtype and attention)",
            "grpo": "GRPO step (auto_think, 4 completions per prompt, rollout + update)"}[kind]
    r = CheckResult(f"throughput_{kind}", f"tokens/s per GPU and MFU of a {what} on one device")
    r.rule = "measured: finite, positive tokens/s over the timed steps (no threshold; compare with the anchors)"
    if kind == "grpo":
        r.rule += ("; images reached the trained micro-batches, and on a GPU with vllm installed the rollouts went "
                   "through TRL's own vLLM path (train_summary.json's rollouts)")
    if kind == "sft":
        root = inputs.corpus(settings).root
    else:
        root = settings.workdir / "rl"
        if not (root / "registry.yaml").is_file():
            workload.build_rl(root, 64)
    out = settings.workdir / f"step_{kind}"
    run_child(settings, f"step_{kind}", "bench.gpu_check.step_child",
              [kind, str(out), str(root), settings.device, settings.model, str(settings.steps)],
              settings.pick(None, 1))  # torchrun on GPU: TRL's colocated vLLM wants a process group
    m = summarize(json.loads((out / "step_meter.json").read_text()), peak)
    m["peak_tflops"], m["peak_source"] = peak.tflops, peak.source
    m["anchors"] = [a["id"] for a in anchors.ANCHORS if a["step"] == kind]
    m["headline"] = ["tokens_per_s_per_gpu", "mfu", "seconds_per_step"]
    r.measured = m
    r.exercised = (f"{settings.model}, {m['dtype']}, attention {m['attn_implementation']}, {m['device_name']}"
                   + (f", rollouts: {m['rollouts']}" if "rollouts" in m else "")
                   + ((", packed" if m["packed"] else ", padded (the family refuses packing)") if kind == "sft" else "")
                   + (" (CPU smoke: MFU against a placeholder peak, not a GPU)" if settings.smoke else ""))
    conditions = {"positive finite tokens/s": 0 < m["tokens_per_s_per_gpu"] < float("inf")}
    if kind == "grpo":
        conditions.update(rollout_conditions(m, settings.smoke))
    return r.decide(conditions)


def rollout_conditions(m: dict, smoke: bool) -> dict[str, bool]:
    """GRPO on a GPU with vllm installed: the rollouts went through TRL's own vLLM path (train_summary.json's
    ``rollouts``; TRL gets vllm_max_model_length = prompt + completion budget) with images in the prompts (vision
    patches in the trained micro-batches). Without vllm, or in CPU smoke mode, only the images are required."""
    import importlib.util

    out = {"images in the rollout prompts": m.get("patches", 0) > 0}
    if not smoke and importlib.util.find_spec("vllm") is not None:
        out["rollouts through TRL's vLLM"] = str(m.get("rollouts", "")).startswith("vLLM")
    return out


def run(settings: Settings, peak: flops.Peak) -> list[CheckResult]:
    return [run_kind(settings, "sft", peak), run_kind(settings, "grpo", peak)]
