"""The reward section of the key table: what its keys allow and where their defaults come from.

Types, defaults and docs are the fields of :mod:`rewards.config`; this adds what a type cannot say. Both GRPO
backends take the whole section alike: TRL through the reward functions (``rewards.grpo``), verl through
``rewards/verl_reward.py``, which receives the section as ``reward_kwargs.reward_config``. Every coefficient is a
project choice: the paper gives no shaping numbers (docs/REWARDS.md says why each was chosen).
"""

from __future__ import annotations

from functools import lru_cache

from rewards.config import RewardConfig
from rewards.keyspec import Key, KeySpec, build_table

LEVELS = ("L1", "L2", "L3", "L4")
BONUS_MODES = ("once", "by_length")
TRL = "project: the reward functions of rewards.grpo"
VERL = "reward.custom_reward_function.reward_kwargs.reward_config"
_NONNEG = "[0, inf)"

_SHAPING = {
    "length_free_tokens": Key(range=_NONNEG),
    "length_cap_tokens": Key(range=_NONNEG),
    "length_penalty": Key(range=_NONNEG),
    "reasoning_bonus_mode": Key(choices=BONUS_MODES, source="Sec. 6.2 for the idea; the form is ours"),
    "reasoning_cap_tokens": Key(range=_NONNEG),
    "min_think_tokens": Key(range=_NONNEG),
}

DECLARED: dict[str, Key] = {
    "reward.mode": Key(choices=("think", "auto_think", "plain"), source="the paper's RL@think and RL@auto-think"),
    "reward.accuracy": Key(choices=("all", "mcq_only"), source="mcq_only: the paper's MCQ-only RL, Sec. 6.2"),
    "reward.correct_threshold": Key(range="[0, 1]"),
    "reward.length_unit": Key(choices=("tokens", "words")),
    "reward.levels": Key(probe="{L1: {length_penalty: 0.1}}"),
    "reward.tasks": Key(probe="{counting: {like: L1}}"),
    **{f"reward.levels.*.{k}": v for k, v in _SHAPING.items()},
    **{f"reward.tasks.*.{k}": v for k, v in _SHAPING.items()},
    "reward.tasks.*.like": Key(choices=LEVELS),
    "reward.judge.missing": Key(choices=("error", "drop")),
    "reward.judge.timeout_s": Key(range="(0, inf)"),
    "reward.judge.temperature": Key(range="[0, 2]"),
    "reward.judge.max_tokens": Key(range="[1, inf)"),
    "reward.judge.retries": Key(range="[1, inf)"),
}


@lru_cache(maxsize=1)
def reward_table() -> dict[str, KeySpec]:
    """Every leaf key of the reward section (``reward.``...)."""
    return build_table(RewardConfig, "reward.", DECLARED, trl=TRL, verl=VERL)
