"""Reward settings (the recipe's ``reward`` section) and its part of the key table. Imports only the rewards package.

Every default here is a project choice (the SpatialTree paper gives no shaping coefficients); docs/REWARDS.md
says why each was chosen and quotes the paper where the design follows its words.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rewards.did_you_mean import did_you_mean
from rewards.keycheck import check_keys, check_values
from rewards.keyspec import Key, KeySpec, build_table

LEVEL_NAMES = ("L1", "L2", "L3", "L4")

@dataclass
class LevelShaping:
    """How one SpatialTree level is shaped in ``auto_think`` mode. Lengths are counted in ``reward.length_unit``.

    The total reward of a sample is
    ``accuracy_weight * accuracy + format_weight * format + length + reasoning``.
    """

    think_reward: float = 0.0
    """Reward added when the completion has a non-empty think block (0 = thinking is not paid)."""
    length_free_tokens: int = 0
    """Completion length allowed before the length penalty starts. 0 = the penalty starts at once."""
    length_cap_tokens: int = 0
    """Length at which the penalty reaches ``length_penalty``; 0 = no length penalty at all."""
    length_penalty: float = 0.0
    """Largest penalty (a positive number, subtracted), reached at ``length_cap_tokens``."""
    reasoning_bonus: float = 0.0
    """Bonus when a non-trivial think block precedes a correct answer (accuracy >= ``correct_threshold``);
    how much of it is paid is set by ``reasoning_bonus_mode``."""
    reasoning_bonus_mode: str = "once"
    """``once``: the whole ``reasoning_bonus`` for any non-trivial think block; ``by_length``:
    ``reasoning_bonus * min(think length, reasoning_cap_tokens) / reasoning_cap_tokens``, growing with the
    think block up to the cap (project choice, after the paper's "encouraging the model to utilize more
    tokens for intermediate computation", Sec. 6.2). Wrong answers get 0 either way."""
    reasoning_cap_tokens: int = 512
    """``by_length``: think length at which the full ``reasoning_bonus`` is paid (project choice: half of the
    Table 3 recipes' 1024-token completions, leaving room for the answer)."""
    min_think_tokens: int = 8
    """A think block shorter than this is trivial: no bonus in either mode."""

    def length_term(self, n_tokens: int) -> float:
        """The (non-positive) length component: 0 up to ``length_free_tokens``, then falling linearly to
        ``-length_penalty`` at ``length_cap_tokens`` and staying there."""
        if self.length_cap_tokens <= 0 or self.length_penalty == 0 or n_tokens <= self.length_free_tokens:
            return 0.0
        span = self.length_cap_tokens - self.length_free_tokens
        return -self.length_penalty * min(1.0, (n_tokens - self.length_free_tokens) / span)

    def bonus(self, think_len: int) -> float:
        """The reasoning bonus for a think block of ``think_len`` before a correct answer."""
        if think_len < max(1, self.min_think_tokens):
            return 0.0
        if self.reasoning_bonus_mode == "by_length":
            return self.reasoning_bonus * min(think_len, self.reasoning_cap_tokens) / self.reasoning_cap_tokens
        return self.reasoning_bonus


@dataclass
class TaskShaping:
    """The shaping of one task type or benchmark leaf, replacing its level's (``reward.tasks``).

    Start from ``like`` (a level's shaping) or, without it, from the sample's own level; each field given
    replaces that field. Fields left out (None) keep the starting shaping's value.
    """

    like: str | None = None
    """``L1``..``L4``: shape these samples as that level (e.g. counting filed under L2 Memory shaped like L1
    perception); None: start from the sample's own level."""
    think_reward: float | None = None
    """As ``LevelShaping.think_reward``."""
    length_free_tokens: int | None = None
    """As ``LevelShaping.length_free_tokens``."""
    length_cap_tokens: int | None = None
    """As ``LevelShaping.length_cap_tokens`` (0 turns the length penalty off)."""
    length_penalty: float | None = None
    """As ``LevelShaping.length_penalty`` (0 turns the length penalty off)."""
    reasoning_bonus: float | None = None
    """As ``LevelShaping.reasoning_bonus``."""
    reasoning_bonus_mode: str | None = None
    """As ``LevelShaping.reasoning_bonus_mode``."""
    reasoning_cap_tokens: int | None = None
    """As ``LevelShaping.reasoning_cap_tokens``."""
    min_think_tokens: int | None = None
    """As ``LevelShaping.min_think_tokens``."""
    optional: bool = False
    """True: the key may match no prompt (a task the paper names that a data set may not have, e.g. counting in
    the stand-in data): no error at load time. False: a key that matches no prompt is an error (a typo)."""

    def apply(self, base: LevelShaping) -> LevelShaping:
        """``base`` with this entry's given fields replaced."""
        given = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                 if f.name not in ("like", "optional") and getattr(self, f.name) is not None}
        return dataclasses.replace(base, **given)


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
    """e.g. http://127.0.0.1:8000/v1. None: no judge (then ``missing`` decides what GRPO does with gpteval
    prompts; a gpteval sample never gets a silent 0 reward)."""
    missing: str = "error"
    """GRPO prompts with metricfunc ``gpteval`` while ``base_url`` is not set: ``error`` (default) stops at
    load time naming the rows; ``drop`` leaves them out, counted and reported in the prompt summary."""
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
    accuracy: str = "all"
    """``all``: every prompt's metric is its accuracy reward; ``mcq_only``: only multiple-choice prompts
    (metricfunc ``multichoiceeval``) are trained on, the paper's "purely maximizing the reward on discrete MCQ
    selection" (Sec. 6.2); the others are left out at load time, counted and reported."""
    accuracy_weight: float = 1.0
    """Weight of the metric score (SpatialTree-Bench metric on the extracted answer)."""
    format_weight: float = 0.1
    """Weight of the format component (1 when the completion follows the mode's format)."""
    correct_threshold: float = 0.5
    """Accuracy at or above which an answer counts as correct for the reasoning bonus."""
    length_unit: str = "tokens"
    """What every shaping length counts (length penalty, think length, ``min_think_tokens``), the same on
    the TRL and the verl backend: ``tokens`` = the policy tokenizer's tokens of the completion's text (the
    trainer hands its tokenizer to the reward functions; verl's adapter loads it from the model path);
    ``words`` = whitespace-separated words (no tokenizer needed)."""
    levels: dict[str, LevelShaping] = field(default_factory=_default_levels)
    """Per-level shaping used in ``auto_think`` mode, keyed L1..L4."""
    tasks: dict[str, TaskShaping] = field(default_factory=dict)
    """Per-task overrides of the level shaping in ``auto_think`` mode, keyed by a task type (the record's
    ``extra_info.task``, e.g. ``counting``) or a benchmark leaf name (``Memory Retrieval``; spaces and case
    ignored). A task-type key wins over a leaf key. A key that matches no prompt is an error at load time."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """The LLM judge for ``gpteval``."""


def _check_level(where: str, lv: LevelShaping) -> None:
    if lv.length_cap_tokens > 0 and lv.length_cap_tokens <= lv.length_free_tokens:
        raise ValueError(f"{where}: length_cap_tokens ({lv.length_cap_tokens}) must exceed "
                         f"length_free_tokens ({lv.length_free_tokens}), or be 0 for no length penalty")
    if lv.reasoning_bonus_mode == "by_length" and lv.reasoning_cap_tokens <= 0:
        raise ValueError(f"{where}.reasoning_cap_tokens must be > 0 with reasoning_bonus_mode=by_length")


def check_reward_config(cfg: RewardConfig) -> RewardConfig:
    """Raise ValueError (naming the key, the allowed values and the closest one) on settings that cannot
    work; return ``cfg``. Single values are checked against the key table (:func:`reward_table`) by the one
    validator (rewards/keycheck.py); the rules between keys are here."""
    if cfg.length_unit == "auto":
        raise ValueError("reward.length_unit=auto is gone (it counted tokens on TRL and words on verl): "
                         "use tokens or words, which both backends count the same way")
    check_values(cfg, reward_table(), "reward.")
    for name, lv in cfg.levels.items():
        if name not in LEVEL_NAMES:
            raise ValueError(f"reward.levels has an unknown level {name!r} (levels are L1..L4)"
                             f"{did_you_mean(name, LEVEL_NAMES)}")
        _check_level(f"reward.levels.{name}", lv)
    for key, task in cfg.tasks.items():
        where = f"reward.tasks.{key}"
        if not str(key).strip():
            raise ValueError("reward.tasks has an empty key (keys are task types or benchmark leaf names)")
        if task.like is not None:
            bases = [cfg.levels.get(task.like, LevelShaping())]
        else:  # the sample's own level: check against every level it could start from
            bases = [LevelShaping(), *cfg.levels.values()]
        for base in bases:
            _check_level(where, task.apply(base))
    return cfg


def _build(cls: type, data: Mapping[str, Any], prefix: str):
    """``cls`` from plain data (keys already checked): mapping entries and sub-sections built recursively."""
    kwargs = {}
    for key, value in data.items():
        if key == "levels":
            kwargs[key] = {lv: _build(LevelShaping, sub or {}, "") for lv, sub in value.items()}
        elif key == "tasks":
            kwargs[key] = {t: _build(TaskShaping, sub or {}, "") for t, sub in value.items()}
        elif key == "judge":
            kwargs[key] = _build(JudgeConfig, value or {}, "")
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
    if not isinstance(data, Mapping):
        raise ValueError(f"reward config must be a mapping, got {type(data).__name__}")
    check_keys(data, RewardConfig, "reward.")
    return check_reward_config(_build(RewardConfig, data, ""))


# ---------------------------------------------------------------------------- the reward section of the key table
# Types, defaults and docs are the fields above; this adds what a type cannot say. Both GRPO backends take the
# whole section alike: TRL through the reward functions (rewards.grpo), verl through rewards/verl_reward.py, which
# receives the section as reward_kwargs.reward_config. Every coefficient is a project choice (the paper gives no
# shaping numbers; docs/REWARDS.md says why each was chosen).

BONUS_MODES = ("once", "by_length")
_TRL = "project: the reward functions of rewards.grpo"
_VERL = "reward.custom_reward_function.reward_kwargs.reward_config"
_NONNEG = "[0, inf)"

_SHAPING = {
    "length_free_tokens": Key(range=_NONNEG),
    "length_cap_tokens": Key(range=_NONNEG),
    "length_penalty": Key(range=_NONNEG),
    "reasoning_bonus_mode": Key(choices=BONUS_MODES, source="Sec. 6.2 for the idea; the form is ours"),
    "reasoning_cap_tokens": Key(range=_NONNEG),
    "min_think_tokens": Key(range=_NONNEG),
}

REWARD_KEYS: dict[str, Key] = {
    "reward.mode": Key(choices=("think", "auto_think", "plain"), source="the paper's RL@think and RL@auto-think"),
    "reward.accuracy": Key(choices=("all", "mcq_only"), source="mcq_only: the paper's MCQ-only RL, Sec. 6.2"),
    "reward.correct_threshold": Key(range="[0, 1]"),
    "reward.length_unit": Key(choices=("tokens", "words")),
    "reward.levels": Key(probe="{L1: {length_penalty: 0.1}}"),
    "reward.tasks": Key(probe="{counting: {like: L1}}"),
    **{f"reward.levels.*.{k}": v for k, v in _SHAPING.items()},
    **{f"reward.tasks.*.{k}": v for k, v in _SHAPING.items()},
    "reward.tasks.*.like": Key(choices=LEVEL_NAMES),
    "reward.judge.missing": Key(choices=("error", "drop")),
    "reward.judge.timeout_s": Key(range="(0, inf)"),
    "reward.judge.temperature": Key(range="[0, 2]"),
    "reward.judge.max_tokens": Key(range="[1, inf)"),
    "reward.judge.retries": Key(range="[1, inf)"),
}


@lru_cache(maxsize=1)
def reward_table() -> dict[str, KeySpec]:
    """Every leaf key of the reward section (``reward.``...)."""
    return build_table(RewardConfig, "reward.", REWARD_KEYS, trl=_TRL, verl=_VERL)
