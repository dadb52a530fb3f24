"""One sample's reward components, the same for the TRL and the verl paths.

    total = accuracy_weight * accuracy + format_weight * format + length + reasoning

- accuracy: the SpatialTree-Bench metric (``metricfunc``) on the extracted answer, in [0, 1];
- format: 1 when the completion follows the mode's format (think: think block then answer; auto_think:
  optional think block then answer), else 0; always 0 in ``plain`` mode;
- length (auto_think only): 0 up to the level's free budget, then down linearly to -length_penalty at the cap;
- reasoning (auto_think only): the level's think_reward when the completion opens with a non-empty think
  block, plus its reasoning_bonus when a non-trivial think block precedes a correct answer.
"""

from __future__ import annotations

import json
from functools import lru_cache

from rewards.completion import Completion, follows_auto_format, follows_think_format, parse_completion
from rewards.config import LevelShaping, RewardConfig
from rewards.scoring import score

COMPONENTS = ("accuracy", "format", "length", "reasoning")
_NEUTRAL = LevelShaping()


def weights(cfg: RewardConfig) -> list[float]:
    """Per-component weights in COMPONENTS order (TRL's ``reward_weights``)."""
    return [float(cfg.accuracy_weight), float(cfg.format_weight), 1.0, 1.0]


def level_shaping(cfg: RewardConfig, level) -> LevelShaping:
    """The shaping of a sample's level ("L1".."L4", any case). A sample without a level (None or "") is not
    shaped; a level the config does not list is an error."""
    if level is None or (isinstance(level, str) and not level.strip()):
        return _NEUTRAL
    key = str(level).strip().upper()
    if key not in cfg.levels:
        if key in ("L1", "L2", "L3", "L4"):
            return _NEUTRAL  # a level the recipe chose not to shape
        raise ValueError(f"sample level {level!r} is not one of L1..L4")
    return cfg.levels[key]


def extra_key(metric_extra) -> str:
    """``metric_extra`` (dict, JSON text or None) as canonical JSON text: hashable, cacheable."""
    if metric_extra is None or metric_extra == "":
        return "{}"
    if isinstance(metric_extra, str):
        return metric_extra
    return json.dumps(metric_extra, sort_keys=True, default=str)


@lru_cache(maxsize=8192)
def _accuracy_cached(metricfunc: str, answer_text: str, answer_json: str, extra_json: str) -> float:
    return score(metricfunc, answer_text, json.loads(answer_json), extra_json)["score"]


def accuracy(metricfunc, answer_text: str, answer, metric_extra, judge=None) -> float | None:
    """The metric score of an extracted answer; None when the sample has no metricfunc (not ours to score).

    Deterministic metrics are cached (TRL calls the accuracy and reasoning functions on the same samples);
    ``gpteval`` calls the judge each time it is asked.
    """
    if metricfunc is None or metricfunc == "":
        return None
    if metricfunc == "gpteval":
        return score(metricfunc, answer_text, answer, metric_extra, judge=judge)["score"]
    try:
        answer_json = json.dumps(answer)
    except (TypeError, ValueError):  # not JSON-able: score without the cache
        return score(metricfunc, answer_text, answer, metric_extra)["score"]
    return _accuracy_cached(metricfunc, answer_text, answer_json, extra_key(metric_extra))


def format_component(cfg: RewardConfig, c: Completion) -> float:
    if cfg.mode == "think":
        return 1.0 if follows_think_format(c) else 0.0
    if cfg.mode == "auto_think":
        return 1.0 if follows_auto_format(c) else 0.0
    return 0.0


def length_component(cfg: RewardConfig, shaping: LevelShaping, n_tokens: int) -> float:
    return shaping.length_term(n_tokens) if cfg.mode == "auto_think" else 0.0


def reasoning_component(cfg: RewardConfig, shaping: LevelShaping, c: Completion, acc: float | None) -> float:
    if cfg.mode != "auto_think":
        return 0.0
    value = 0.0
    if c.has_think:
        value += shaping.think_reward
    if (acc is not None and acc >= cfg.correct_threshold and c.answer_after_think
            and c.think_tokens >= max(1, shaping.min_think_tokens)):
        value += shaping.reasoning_bonus
    return value


def count_length(cfg: RewardConfig, text: str, completion_ids=None) -> int:
    """Completion length in model tokens (``completion_ids`` given and ``length_unit`` auto) or words."""
    if cfg.length_unit == "auto" and completion_ids is not None:
        return len(completion_ids)
    return len(text.split())


def breakdown(cfg: RewardConfig, text: str, *, metricfunc, answer, metric_extra=None, level=None,
              completion_ids=None, judge=None) -> dict:
    """All components and the weighted total of one completion. ``accuracy`` is None (and counts 0 in the
    total, as TRL's nansum does) when the sample has no metricfunc."""
    c = parse_completion(text)
    shaping = level_shaping(cfg, level)
    acc = accuracy(metricfunc, c.answer, answer, metric_extra, judge)
    parts = {
        "accuracy": acc,
        "format": format_component(cfg, c),
        "length": length_component(cfg, shaping, count_length(cfg, text, completion_ids)),
        "reasoning": reasoning_component(cfg, shaping, c, acc) if acc is not None else None,
    }
    parts["score"] = sum(w * v for w, v in zip(weights(cfg), (parts[k] for k in COMPONENTS)) if v is not None)
    return parts
