"""Does one training micro-batch of a recipe fit an 80 GB GPU? Arithmetic from the model's config, not a measurement.

Used by tests/test_memory.py on every shipped recipe with Qwen2.5-VL-7B's dimensions, and by ``make gpu-check``
(bench/gpu_check/c_memory.py) next to the measured peak. All counts are bytes; every assumption is a named
constant with where it comes from. ``python -m train.memory RECIPE [key=value ...]`` prints the table.

Activations kept for the backward pass of one decoder layer, per token, bf16 (2 bytes a value), with
flash-attention (no seq x seq score matrix is stored; its log-sum-exp is negligible) and a SwiGLU MLP:
input RMSNorm's input (h), the normed input of q/k/v (h), q, k, v after rope (h + 2 kv), the attention output
going into o_proj (h), the post-attention RMSNorm's input (h), the normed MLP input (h), gate and up outputs
(2 i), SiLU(gate) (i) and SiLU(gate) * up going into down_proj (i): 2 x (6 h + 2 kv + 4 i) bytes.
With gradient checkpointing only each layer's input is kept (2 h bytes) and one layer's activations live again
during its recomputation. The language-model head adds its logits: 10 bytes per logit for SFT (bf16 logits,
the fp32 copy transformers' loss makes, its fp32 gradient) over every token, 6 bytes per logit for GRPO on TRL
(bf16 logits, the logits / temperature copy, their gradient) over the completion tokens only (TRL asks the
model for ``logits_to_keep`` = the completion).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

GB = 1e9
CARD_BYTES = 80 * GB
"""An 80 GB card (H100 / A100 80GB), the card docs/PERFORMANCE.md's estimate assumes."""


@dataclass(frozen=True)
class ModelDims:
    """The language model's shape (the vision tower is frozen in every shipped recipe; its parameters count in
    the weights, its activations do not need keeping)."""

    hidden: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    intermediate: int
    vision_params: int = 0

    @property
    def kv_dim(self) -> int:
        return self.hidden // self.heads * self.kv_heads

    @property
    def lm_params(self) -> int:
        h, kv, i = self.hidden, self.kv_dim, self.intermediate
        return self.layers * (2 * h * h + 2 * h * kv + 3 * h * i) + 2 * self.vocab * h  # untied embeddings + head


QWEN25_VL_7B = ModelDims(hidden=3584, layers=28, heads=28, kv_heads=4, vocab=152064, intermediate=18944,
                         vision_params=675_000_000)
"""Qwen/Qwen2.5-VL-7B-Instruct's config.json (hidden_size, num_hidden_layers, num_attention_heads,
num_key_value_heads, vocab_size, intermediate_size); the vision tower + merger (0.63B + 0.045B) as counted in
docs/PERFORMANCE.md's GPU estimate."""

GPUS = 8
"""project choice: the setup docs/PERFORMANCE.md estimates (8 GPUs, DeepSpeed ZeRO-3 shards model states over them)."""
ZERO3_LIVE_PARAMS = 1_000_000_000
"""recipes/deepspeed/zero3.json stage3_max_live_parameters: gathered bf16 parameters a rank may hold at once."""
RESERVE_FRACTION = 0.10
"""project choice: CUDA context, NCCL buffers, allocator fragmentation and kernel workspaces (10% of the card)."""


def dims_from_config(config) -> ModelDims:
    """ModelDims of a transformers config (the text config of a VLM)."""
    text = getattr(config, "text_config", None) or config
    return ModelDims(hidden=text.hidden_size, layers=text.num_hidden_layers, heads=text.num_attention_heads,
                     kv_heads=getattr(text, "num_key_value_heads", None) or text.num_attention_heads,
                     vocab=text.vocab_size, intermediate=text.intermediate_size)


def layer_activation_bytes_per_token(d: ModelDims) -> int:
    """Bytes one decoder layer keeps per token for its backward pass (module doc)."""
    return 2 * (6 * d.hidden + 2 * d.kv_dim + 4 * d.intermediate)


def activation_bytes(d: ModelDims, tokens: int, logit_tokens: int, logit_bytes: int, checkpointing: bool) -> float:
    """Activation memory of one micro-batch of ``tokens`` tokens (``logit_tokens`` of them through the LM head)."""
    per_layer = layer_activation_bytes_per_token(d)
    if checkpointing:
        layers = d.layers * 2 * d.hidden * tokens + per_layer * tokens
    else:
        layers = d.layers * per_layer * tokens
    return layers + logit_tokens * d.vocab * logit_bytes


def model_state_bytes(d: ModelDims, reference_model: bool) -> float:
    """Per GPU under ZeRO-3 over :data:`GPUS`: bf16 weights, bf16 gradients and fp32 Adam (master, m, v) of the
    trainable language model, sharded; the gathered live parameters; a bf16 reference model when GRPO's beta > 0."""
    total, trainable = d.lm_params + d.vision_params, d.lm_params
    states = 2 * total + 2 * trainable + 12 * trainable + (2 * total if reference_model else 0)
    return states / GPUS + 2 * ZERO3_LIVE_PARAMS


@dataclass
class Budget:
    """One recipe's micro-batch against the card."""

    kind: str
    tokens: int
    activations: float
    activations_without_checkpointing: float
    available: float
    checkpointing: bool

    @property
    def fits(self) -> bool:
        return self.activations <= self.available

    @property
    def needs_checkpointing(self) -> bool:
        return self.activations_without_checkpointing > self.available

    def line(self, name: str) -> str:
        return (f"{name}: {self.kind} micro-batch of {self.tokens:,} tokens: activations {self.activations / GB:.1f} GB "
                f"(gradient checkpointing {'on' if self.checkpointing else 'off'}; "
                f"{self.activations_without_checkpointing / GB:.1f} GB without) vs {self.available / GB:.1f} GB "
                f"left on an {CARD_BYTES / GB:.0f} GB card: {'fits' if self.fits else 'DOES NOT FIT'}")


def budget(recipe, d: ModelDims, kind: str) -> Budget:
    """``kind`` ``sft``: per_device_batch_size x data.max_length tokens (a packed micro-batch holds the same
    samples), logits over all of them. ``grpo``: per_device_batch_size x (max_prompt_length +
    max_completion_length), logits over the completions; vLLM colocated reserves its share of the card."""
    t, ckpt = recipe.train, recipe.model.gradient_checkpointing
    if kind == "sft":
        tokens = t.per_device_batch_size * recipe.data.max_length
        logit_tokens, logit_bytes, reserved_vllm, ref = tokens, 10, 0.0, False
    else:
        g = recipe.grpo
        tokens = t.per_device_batch_size * (g.max_prompt_length + g.max_completion_length)
        logit_tokens, logit_bytes = t.per_device_batch_size * g.max_completion_length, 6
        colocated = g.use_vllm and g.vllm_mode == "colocate"
        reserved_vllm, ref = (g.vllm_gpu_memory_utilization * CARD_BYTES if colocated else 0.0), g.beta > 0
    available = CARD_BYTES * (1 - RESERVE_FRACTION) - reserved_vllm - model_state_bytes(d, ref)
    return Budget(kind, tokens, activation_bytes(d, tokens, logit_tokens, logit_bytes, ckpt),
                  activation_bytes(d, tokens, logit_tokens, logit_bytes, False), available, ckpt)


def main(argv: list[str]) -> int:
    from train.recipe import load_recipe

    if not argv or argv[0] not in ("sft", "grpo"):
        print("usage: python -m train.memory sft|grpo RECIPE [key=value ...]", file=sys.stderr)
        return 2
    recipe = load_recipe(argv[1], argv[2:])
    print(budget(recipe, QWEN25_VL_7B, argv[0]).line(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
