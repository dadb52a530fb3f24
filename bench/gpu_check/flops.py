"""Model FLOPs, peak FLOP/s per GPU model, and MFU.

MFU = model FLOPs of the measured steps / (their wall seconds x GPUs x peak dense bf16 FLOP/s).

Model FLOPs (the convention of the PaLM paper's appendix B, causal attention counted once):

- matmul parameters N: every ``nn.Linear``/``nn.Conv*`` weight, counted from the loaded model, split into
  the language model (decoder layers + LM head; the input-embedding lookup costs no FLOPs and is not
  counted) and the vision tower (patch embedding, blocks, merger);
- a forward pass costs 2 N per token, a training step (forward + backward) 6 N per token;
- causal self-attention of a sequence of s tokens costs 2 s^2 D per layer forward (QK^T and AV, each
  s^2/2 query-key pairs x 2 D FLOPs; D = heads x head_dim), so 6 s^2 D L per trained sequence; packed
  samples count their own lengths (they do not attend to each other);
- vision: the tower runs on patches (before the 2x2 merge), forward only when frozen (2 N_vision per
  patch, the default recipes freeze it), 6 N_vision when trained; the merger (projector, trained by default)
  is counted forward only, and the tower's windowed attention is left out (each well under 1% of a 7B step);
- image tokens in the LLM sequence count as LLM tokens (they pass through every layer, forward and backward);
- GRPO adds, per step: the rollout (prefill 2 N per prompt token + decode 2 N per completion token +
  causal attention forward 2 s^2 D L per sequence, the prompt's vision forward once), and one more forward
  (2 N per token + attention) for each of the reference and old-policy log-prob passes TRL runs (beta > 0;
  num_iterations > 1 or steps_per_generation > 1). HF generate and vLLM are counted alike (model FLOPs,
  not hardware FLOPs: the decode re-reading the KV cache is not FLOPs).

EasyR1's own counter (verl/utils/flops_counter.py in EasyR1) counts 6 N tokens with N including the input
embedding, attention as 12 s^2 D L (the full square, not causal), no vision tower, and divides by the actor
update's time only ("Actor MFU"); its MFU figures are therefore not the same quantity as the step MFU here.
"""

from __future__ import annotations

from dataclasses import dataclass

# Peak dense bf16 tensor-core TFLOP/s per GPU model: the vendor datasheet's "with sparsity" figure halved.
# Matched in this order against torch.cuda.get_device_name() (more specific names first: "H100 PCIe" before
# "H100", "A100" before "A10", "L40S" before "L40" before "L4", "H200" before "H20").
PEAK_BF16_TFLOPS: list[tuple[str, float, str]] = [
    ("B200", 2250.0, "NVIDIA HGX B200 datasheet: 4.5 PFLOPS FP16/BF16 with sparsity per GPU"),
    ("H200 NVL", 835.0, "NVIDIA H200 datasheet (NVL): 1,671 TFLOPS BF16 with sparsity"),
    ("H200", 989.0, "NVIDIA H200 datasheet (SXM): 1,979 TFLOPS BF16 with sparsity"),
    ("H100 NVL", 835.0, "NVIDIA H100 datasheet (NVL): 1,671 TFLOPS BF16 with sparsity"),
    ("H100 PCIe", 756.0, "NVIDIA H100 datasheet (PCIe): 1,513 TFLOPS BF16 with sparsity"),
    ("H100", 989.0, "NVIDIA H100 datasheet (SXM): 1,979 TFLOPS BF16 with sparsity"),
    ("H800", 989.0, "H100 SXM figure (same Hopper SXM part; EasyR1's counter uses 989 too)"),
    ("H20", 148.0, "EasyR1/verl flops_counter table (no public NVIDIA datasheet)"),
    ("A100", 312.0, "NVIDIA A100 datasheet: 624 TFLOPS BF16 with sparsity"),
    ("A800", 312.0, "A100 figure (same Ampere part; EasyR1's counter uses 312 too)"),
    ("L40S", 362.05, "NVIDIA L40S datasheet: 733 TFLOPS BF16 with sparsity"),
    ("L40", 181.05, "NVIDIA L40 datasheet: 362.1 TFLOPS BF16 with sparsity"),
    ("L20", 119.5, "EasyR1/verl flops_counter table"),
    ("L4", 121.0, "NVIDIA L4 datasheet: 242 TFLOPS BF16 with sparsity"),
    ("A10G", 0.0, "unknown: AWS publishes no tensor-core figure for the A10G (pass --peak-tflops)"),
    ("A10", 125.0, "NVIDIA A10 datasheet: 250 TFLOPS BF16 with sparsity"),
    ("RTX 4090", 165.2, "NVIDIA Ada whitepaper: 330.4 TFLOPS BF16 (FP32 accumulate) with sparsity"),
]
CPU_PLACEHOLDER_TFLOPS = 1.0
"""CPU smoke mode only: a placeholder peak so the MFU arithmetic runs. NOT a GPU, not a real peak."""


@dataclass
class Peak:
    tflops: float | None
    """Peak dense bf16 TFLOP/s per device; None when unknown (MFU is then null)."""
    source: str
    """Where the number comes from."""
    matched: str | None
    """The table entry that matched the device name."""


def peak_for(device_name: str, override: float | None = None) -> Peak:
    """The peak dense bf16 FLOP/s of ``device_name`` (torch.cuda.get_device_name), or ``override``."""
    if override is not None:
        return Peak(override, "--peak-tflops (given on the command line)", None)
    for key, tflops, source in PEAK_BF16_TFLOPS:
        if key.lower() in device_name.lower():
            return Peak(tflops or None, source, key)
    return Peak(None, f"unknown GPU model {device_name!r}: pass --peak-tflops for MFU", None)


@dataclass
class ModelShape:
    """What the FLOPs formulas need of a model, counted from its modules."""

    n_llm: int
    """Matmul weights of the language model: decoder layers + LM head (no input embedding)."""
    n_vision: int
    """Matmul weights of the vision tower including the merger (projector)."""
    attn_dim: int
    """D = attention heads x head_dim of the language model."""
    layers: int
    """Decoder layers."""
    vision_trainable: bool
    """Whether any vision-tower weight is trained (backward through the tower)."""


def model_shape(model) -> ModelShape:
    """Count a model's matmul weights by its family's module groups (train/models/: vision tower and projector vs
    language model; works on a PEFT/DeepSpeed-wrapped model's modules)."""
    import torch

    from train.models import family_for_model
    from train.module_groups import group_of

    groups = family_for_model(model).groups
    n_llm = n_vis = 0
    vision_trainable = False
    for name, module in model.named_modules():
        if not isinstance(module, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv3d)):
            continue
        w = module.weight
        numel = int(getattr(w, "ds_numel", 0) or w.numel())  # ZeRO-3 partitions weights: ds_numel is the full size
        group = group_of(f"{name}.weight", groups)
        if group in ("vision", "projector"):
            n_vis += numel
            vision_trainable |= bool(w.requires_grad) and group == "vision"
        else:
            n_llm += numel
    text = getattr(model.config, "text_config", model.config)
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    return ModelShape(n_llm=n_llm, n_vision=n_vis, attn_dim=text.num_attention_heads * head_dim,
                      layers=text.num_hidden_layers, vision_trainable=vision_trainable)


def attention_flops(shape: ModelShape, seq_sq_sum: float, passes: float) -> float:
    """Causal self-attention: 2 s^2 D L per forward pass of a sequence; ``passes`` = 1 forward, 3 training."""
    return 2.0 * passes * seq_sq_sum * shape.attn_dim * shape.layers


def vision_flops(shape: ModelShape, patches: float, training: bool) -> float:
    """The tower on ``patches`` patches: forward only when frozen (or in a no-grad pass)."""
    return (6.0 if (training and shape.vision_trainable) else 2.0) * shape.n_vision * patches


def training_flops(shape: ModelShape, tokens: float, seq_sq_sum: float, patches: float) -> float:
    """One training pass (forward + backward) over ``tokens`` LLM tokens in sequences whose squared lengths
    sum to ``seq_sq_sum``, with ``patches`` vision patches."""
    return 6.0 * shape.n_llm * tokens + attention_flops(shape, seq_sq_sum, 3) + vision_flops(shape, patches, True)


def forward_flops(shape: ModelShape, tokens: float, seq_sq_sum: float, patches: float) -> float:
    """One no-grad forward (rollout prefill + decode, reference or old-policy log-probs)."""
    return 2.0 * shape.n_llm * tokens + attention_flops(shape, seq_sq_sum, 1) + vision_flops(shape, patches, False)


def mfu(flops: float, seconds: float, devices: int, peak: Peak) -> float | None:
    """Model FLOPs utilisation, or None when the peak is unknown."""
    if not peak.tflops or seconds <= 0:
        return None
    return flops / (seconds * devices * peak.tflops * 1e12)


FORMULA = {
    "mfu": "model FLOPs of the timed steps / (their wall seconds x GPUs x peak dense bf16 FLOP/s)",
    "training": "6 N_llm T + 6 D L sum(s^2) + (2 or 6) N_vision P",
    "forward": "2 N_llm T + 2 D L sum(s^2) + 2 N_vision P",
    "grpo_step": "training(prompt+completion) + forward for the rollout + one forward per reference/old-policy pass",
    "terms": "N_llm: decoder + LM head matmul weights (no input embedding); N_vision: vision tower + merger; "
             "T: non-padding LLM tokens (image tokens included); s: each sample's own length (packed samples "
             "apart); D: heads x head_dim; L: layers; P: vision patches before the 2x2 merge",
    "tokens_per_s_per_gpu": "non-padding tokens of the timed steps / (wall seconds x GPUs); for GRPO prompt + "
                            "completion tokens of the sequences trained in the step (EasyR1/verl's perf/throughput)",
}
