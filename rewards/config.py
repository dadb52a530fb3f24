"""Reward settings (the recipe's ``reward`` section). Plain dataclasses: no project imports."""

from __future__ import annotations

from dataclasses import dataclass, field


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
    levels: dict[str, LevelShaping] = field(default_factory=_default_levels)
    """Per-level shaping used in ``auto_think`` mode, keyed L1..L4."""
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    """The LLM judge for ``gpteval``."""
