"""Memory: one full-length GRPO micro-batch on the recipe's settings, forward + backward on one GPU, against the
arithmetic of train/memory.py.

The micro-batch is grpo_base's (recipes/base/grpo_base.yaml through ``full_think``): ``per_device_batch_size``
sequences of ``max_prompt_length + max_completion_length`` tokens, the recipe's gradient checkpointing, use_cache
off on every config (train.model_loading.disable_cache), logits only for the completion plus one (as TRL asks
the model) turned into log-probs by TRL's own ``selective_log_softmax``. Measured: the CUDA allocator's peak
above what was allocated before the forward, minus the gradients of the trainable weights (the arithmetic counts
activations only). The rule: the measured activation peak is within :data:`UNDERESTIMATE` of the arithmetic's,
and the whole peak fits the card. With ``--model Qwen/Qwen2.5-VL-7B-Instruct`` this is the issue-27 question
(does the 7B micro-batch fit an 80 GB card?) answered by measurement; on the tiny model it checks the arithmetic.

CPU smoke mode: skipped (CUDA's allocator counters are the measurement); the arithmetic and the rule are tested
in tests/test_memory.py and tests/test_gpu_check.py.
"""

from __future__ import annotations

from bench.gpu_check import inputs
from bench.gpu_check.record import CheckResult, Settings, Tolerance

NAME = "memory_grpo"
RECIPE = "full_think"
UNDERESTIMATE = 1.5
"""project choice: the arithmetic leaves out allocator rounding, RMSNorm's fp32 temporaries and autograd's
short-lived buffers; measured activations above 1.5x the arithmetic mean the recipe check (tests/test_memory.py)
cannot be trusted."""


def rule(activation_peak: float, predicted: float, total_peak: float, card: float) -> dict[str, bool]:
    """The pass conditions, by name."""
    return {f"activation peak <= {UNDERESTIMATE} x arithmetic": activation_peak <= UNDERESTIMATE * predicted,
            "whole peak fits the card": total_peak <= card,
            "measured something": activation_peak > 0}


def run(settings: Settings) -> CheckResult:
    r = CheckResult(NAME, f"one full-length GRPO micro-batch ({RECIPE}: per_device_batch_size x (max_prompt_length + "
                          "max_completion_length), the recipe's gradient checkpointing), forward + backward: peak "
                          "GPU memory vs train/memory.py")
    r.tolerances = [Tolerance("activation_peak_over_arithmetic", UNDERESTIMATE,
                              "project choice: allocator rounding, fp32 norm temporaries and autograd buffers are not "
                              "in the arithmetic (train/memory.py)")]
    r.rule = (f"measured activation peak <= {UNDERESTIMATE} x train/memory.py's activations for the model's dims and "
              "the recipe's lengths; the whole peak (weights, gradients, activations) <= the card's memory")
    if settings.smoke:
        return r.skip("CPU smoke: the peak is read from CUDA's allocator; the arithmetic is tested in tests/test_memory.py")
    import torch
    from trl.trainer.utils import selective_log_softmax

    from train.memory import activation_bytes, dims_from_config
    from train.model_loading import disable_cache
    from train.recipe import load_recipe

    recipe = load_recipe(RECIPE)
    g, batch = recipe.grpo, recipe.train.per_device_batch_size
    length, completion = g.max_prompt_length + g.max_completion_length, g.max_completion_length
    model, _ = inputs.load(settings, "bf16", "auto")
    if recipe.model.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    disable_cache(model)
    model.train()
    dims = dims_from_config(model.config)
    ids = torch.randint(10, dims.vocab - 10, (batch, length), device=settings.device)
    grads = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    out = model(input_ids=ids, attention_mask=torch.ones_like(ids), logits_to_keep=completion + 1)
    logits = out.logits[:, :-1] / g.temperature
    loss = -selective_log_softmax(logits, ids[:, -completion:]).mean()
    loss.backward()
    torch.cuda.synchronize()
    peak = torch.cuda.max_memory_allocated()
    card = torch.cuda.get_device_properties(0).total_memory
    predicted = activation_bytes(dims, batch * length, batch * completion, 6, recipe.model.gradient_checkpointing)
    activation_peak = peak - base - grads
    r.measured = {"tokens": batch * length, "gradient_checkpointing": recipe.model.gradient_checkpointing,
                  "activation_peak_gb": activation_peak / 1e9, "arithmetic_gb": predicted / 1e9,
                  "ratio": activation_peak / predicted, "total_peak_gb": peak / 1e9, "card_gb": card / 1e9,
                  "attn_implementation": model.config._attn_implementation,
                  "headline": ["activation_peak_gb", "arithmetic_gb", "total_peak_gb"]}
    r.exercised = (f"{settings.model}, bf16, attention {model.config._attn_implementation}, "
                   f"{torch.cuda.get_device_name(0)}, one micro-batch of {batch} x {length} tokens (text only)")
    del model, out, logits, loss
    inputs.free(settings)
    return r.decide(rule(activation_peak, predicted, peak, card))
