"""Reward settings (the recipe's ``reward`` section). Plain dataclasses: no project imports.

The defaults and why they were chosen are in docs/REWARDS.md.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from rewards.did_you_mean import did_you_mean

MODES = ("think", "auto_think", "plain")
LENGTH_UNITS = ("auto", "words")


@dataclass
class LevelShaping:
    """How one SpatialTree level is shaped in ``auto_think`` mode.

    The total reward of a sample is
    ``accuracy_weight * accuracy + format_weight * format + length + reasoning``.
    """

    think_reward: float = 0.0
    """Reward added when the completion has a non-empty think block (0 = thinking is not paid)."""
    length_free_tokens: int = 0
    """Completion tokens allowed before the length penalty starts. 0 = the penalty starts at once."""
    length_cap_tokens: int = 0
    """Tokens at which the penalty reaches ``length_penalty``; 0 = no length penalty at all."""
    length_penalty: float = 0.0
    """Largest penalty (a positive number, subtracted), reached at ``length_cap_tokens``."""
    reasoning_bonus: float = 0.0
    """Bonus when a non-trivial think block precedes a correct answer (accuracy >= ``correct_threshold``)."""
    min_think_tokens: int = 8
    """A think block with fewer whitespace-separated tokens than this is trivial: no bonus."""

    def length_term(self, n_tokens: int) -> float:
        """The (non-positive) length component: 0 up to ``length_free_tokens``, then falling linearly to
        ``-length_penalty`` at ``length_cap_tokens`` and staying there."""
        if self.length_cap_tokens <= 0 or self.length_penalty == 0 or n_tokens <= self.length_free_tokens:
            return 0.0
        span = self.length_cap_tokens - self.length_free_tokens
        return -self.length_penalty * min(1.0, (n_tokens - self.length_free_tokens) / span)


def _default_levels() -> dict[str, LevelShaping]:
    return {
        "L1": LevelShaping(think_reward=0.0, length_free_tokens=32, length_cap_tokens=256, length_penalty=0.5),
        "L2": LevelShaping(),
        "L3": LevelShaping(reasoning_bonus=0.2),
        "L4": LevelShaping(reasoning_bonus=0.2),
    }


@dataclass
class JudgeConfig:
    """The LLM judge used by the ``gpteval`` metric: an OpenAI-compatible chat endpoint."""

    base_url: str | None = None
    """e.g. http://127.0.0.1:8000/v1. None: gpteval samples score 0 with details saying why."""
    model: str = "gpt-4o-mini"
    """Model name sent to the endpoint."""
    api_key_env: str = "OPENAI_API_KEY"
    """Name of the environment variable holding the API key (the key itself never goes in a recipe)."""
    timeout_s: float = 30.0
    """Per-request timeout in seconds."""
    temperature: float = 0.2
    """Sampling temperature of the judge (low: grades should be repeatable)."""
    max_tokens: int = 512
    """Longest judge reply in tokens (a score and a short reason)."""
    retries: int = 3
    """Attempts per sample on network errors, HTTP 429/5xx and empty replies; then the sample scores 0."""


@dataclass
class RewardConfig:
    """How GRPO completions are rewarded. Every coefficient is here, none is hidden in code."""

    mode: str = "auto_think"
    """``think``: every level must reason in <think>..</think> then answer (the paper's RL@think);
    ``auto_think``: hierarchy-aware shaping per level (see ``levels``); ``plain``: accuracy only."""
    accuracy_weight: float = 1.0
    """Weight of the metric score (SpatialTree-Bench metric on the extracted answer)."""
    format_weight: float = 0.1
    """Weight of the format component (1 when the completion follows the mode's format)."""
    correct_threshold: float = 0.5
    """Accuracy at or above which an answer counts as correct for the reasoning bonus."""
    length_unit: str = "auto"
    """How completion length is counted: ``auto`` = model tokens when the trainer passes ``completion_ids``
    (TRL does), else whitespace-separated words; ``words`` = always words (what verl's adapter can see: use it
    to get identical rewards from both backends)."""
    levels: dict[str, LevelShaping] = field(default_factory=_default_levels)
    """Per-level shaping used in ``auto_think`` mode, keyed L1..L4."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """The LLM judge for ``gpteval``."""


def check_reward_config(cfg: RewardConfig) -> RewardConfig:
    """Raise ValueError on settings that cannot work; return ``cfg``."""
    if cfg.mode not in MODES:
        raise ValueError(f"reward.mode={cfg.mode!r} is not one of {', '.join(MODES)}")
    if cfg.length_unit not in LENGTH_UNITS:
        raise ValueError(f"reward.length_unit={cfg.length_unit!r} is not one of {', '.join(LENGTH_UNITS)}")
    for name, lv in cfg.levels.items():
        if name not in ("L1", "L2", "L3", "L4"):
            raise ValueError(f"reward.levels has an unknown level {name!r} (levels are L1..L4)")
        if lv.length_cap_tokens > 0 and lv.length_cap_tokens <= lv.length_free_tokens:
            raise ValueError(f"reward.levels.{name}: length_cap_tokens ({lv.length_cap_tokens}) must exceed "
                             f"length_free_tokens ({lv.length_free_tokens}), or be 0 for no length penalty")
        if lv.length_penalty < 0:
            raise ValueError(f"reward.levels.{name}.length_penalty must be >= 0 (it is subtracted)")
    return cfg


def _build(cls: type, data: Mapping[str, Any], prefix: str):
    if not isinstance(data, Mapping):
        raise ValueError(f"{prefix.rstrip('.') or 'reward config'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in data.items():
        if key not in fields:
            hint = did_you_mean(f"{prefix}{key}", [f"{prefix}{f}" for f in fields])
            raise ValueError(f"unknown reward setting {prefix + key!r}{hint}")
        if key == "levels":
            kwargs[key] = {lv: _build(LevelShaping, sub, f"{prefix}levels.{lv}.") for lv, sub in value.items()}
        elif key == "judge":
            kwargs[key] = _build(JudgeConfig, value, f"{prefix}judge.")
        else:
            kwargs[key] = value
    return cls(**kwargs)


def reward_config_from_dict(data: Mapping[str, Any] | RewardConfig | None) -> RewardConfig:
    """A checked RewardConfig from a plain dict (e.g. ``dataclasses.asdict(recipe.reward)`` carried in verl's
    extra_info). Missing keys take the defaults; ``levels`` given replace the default levels entirely;
    unknown keys raise ValueError naming the closest valid key."""
    if data is None:
        return check_reward_config(RewardConfig())
    if isinstance(data, RewardConfig):
        return check_reward_config(data)
    return check_reward_config(_build(RewardConfig, data, ""))
