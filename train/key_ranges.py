"""The valid range of every numeric recipe key whose type cannot say it (batch sizes, lengths, ratios, learning
rates, GRPO's group size ...). Checked when a recipe loads (train.recipe), so the launchers, the data report and a
sweep's validation all stop on a bad value before anything heavy happens, naming the key.

Imports nothing of the project (train.recipe wraps the message into its RecipeError).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any


def _gt0(v) -> bool:
    return v > 0


def _ge0(v) -> bool:
    return v >= 0


def _ge1(v) -> bool:
    return v >= 1


def _unit_open_right(v) -> bool:
    return 0 <= v < 1


def _unit_closed(v) -> bool:
    return 0 <= v <= 1


def _unit_open_left(v) -> bool:
    return 0 < v <= 1


def _steps(v) -> bool:
    return v == -1 or v >= 1


# key -> (test, what the range is). None values are left to the key's own default rule (train.recipe.finalize).
RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "train.per_device_batch_size": (_ge1, ">= 1"),
    "train.grad_accum": (_ge1, ">= 1"),
    "train.max_steps": (_steps, "-1 (the mix's budget) or >= 1"),
    "train.save_steps": (_ge0, ">= 0 (0 = only at the end)"),
    "train.save_total_limit": (_ge0, ">= 0 (0 = keep all)"),
    "train.logging_steps": (_ge1, ">= 1"),
    "train.num_threads": (_ge1, ">= 1"),
    "train.collective_timeout_s": (_gt0, "> 0 seconds"),
    "train.packing_max_length": (_ge1, ">= 1 tokens"),
    "data.max_length": (_ge1, ">= 1 tokens"),
    "data.num_workers": (_ge0, ">= 0"),
    "data.max_skip_fraction": (_unit_closed, "in [0, 1]"),
    "data.image_max_pixels": (_ge1, ">= 1"),
    "data.image_min_pixels": (_ge1, ">= 1"),
    "data.video_fps": (_gt0, "> 0"),
    "data.video_max_frames": (_ge1, ">= 1"),
    "optim.lr": (_gt0, "> 0"),
    "optim.projector_lr": (_ge0, ">= 0"),
    "optim.vision_lr": (_ge0, ">= 0"),
    "optim.weight_decay": (_ge0, ">= 0"),
    "optim.warmup_ratio": (_unit_open_right, "in [0, 1)"),
    "optim.max_grad_norm": (_ge0, ">= 0 (0 = no clipping)"),
    "model.lora.r": (_ge1, ">= 1"),
    "model.lora.alpha": (_gt0, "> 0"),
    "model.lora.dropout": (_unit_open_right, "in [0, 1)"),
    "mix.budget.value": (_gt0, "> 0"),
    "grpo.num_generations": (lambda v: v >= 2, ">= 2 (GRPO compares completions within a group)"),
    "grpo.beta": (_ge0, ">= 0"),
    "grpo.epsilon": (_gt0, "> 0"),
    "grpo.epsilon_high": (_gt0, "> 0"),
    "grpo.temperature": (_gt0, "> 0"),
    "grpo.top_p": (_unit_open_left, "in (0, 1]"),
    "grpo.max_prompt_length": (_ge1, ">= 1 tokens"),
    "grpo.max_completion_length": (_ge1, ">= 1 tokens"),
    "grpo.num_iterations": (_ge1, ">= 1"),
    "grpo.steps_per_generation": (_ge1, ">= 1"),
    "grpo.vllm_gpu_memory_utilization": (_unit_open_left, "in (0, 1]"),
    "eval.batch_size": (_ge1, ">= 1"),
    "eval.every_steps": (_ge0, ">= 0 (0 = never mid-run)"),
    "eval.temperature": (_ge0, ">= 0"),
    "eval.top_p": (_unit_open_left, "in (0, 1]"),
}


def _get(recipe: Any, dotted: str) -> Any:
    node = recipe
    for part in dotted.split("."):
        if not hasattr(node, part):
            return None  # a key another version of the schema does not have
        node = getattr(node, part)
    return node


def range_problem(recipe: Any) -> str | None:
    """The first key outside its range (:data:`RANGES`; betas in [0, 1); epsilon_high >= epsilon), or None."""
    for key, (ok, what) in RANGES.items():
        value = _get(recipe, key)
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if isinstance(value, float) and not math.isfinite(value):
            return f"{key}={value!r} must be a finite number {what}"
        if not ok(value):
            return f"{key}={value!r} is out of range: must be {what}"
    betas = list(recipe.optim.betas)
    if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
        return f"optim.betas={betas!r} must be two numbers in [0, 1)"
    g = recipe.grpo
    if g.epsilon_high is not None and g.epsilon_high < g.epsilon:
        return f"grpo.epsilon_high={g.epsilon_high!r} is below grpo.epsilon={g.epsilon!r}"
    return None
