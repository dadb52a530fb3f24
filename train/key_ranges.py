"""Rules between recipe keys that the key table (train/keys.py: one range per key) cannot state: a step count
that is -1 or at least 1, two betas in [0, 1), the upper clip not below the lower. Checked when a recipe loads,
right after the key table's own values and ranges (train.recipe.load_recipe).

Imports nothing of the project (train.recipe wraps the message into its RecipeError).
"""

from __future__ import annotations

from typing import Any


def relation_problem(recipe: Any) -> str | None:
    """The first broken rule, as a one-line message, or None."""
    steps = recipe.train.max_steps
    if steps == 0 or (isinstance(steps, int) and steps < -1):
        return f"train.max_steps={steps!r} is out of range: must be -1 (the mix's budget) or >= 1"
    betas = list(recipe.optim.betas)
    if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
        return f"optim.betas={betas!r} must be two numbers in [0, 1)"
    g = recipe.grpo
    if g.epsilon_high is not None and g.epsilon_high < g.epsilon:
        return f"grpo.epsilon_high={g.epsilon_high!r} is below grpo.epsilon={g.epsilon!r}"
    return None
