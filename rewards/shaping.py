"""One sample's reward components, the same for the TRL and the verl paths.

    total = accuracy_weight * accuracy + format_weight * format + length + reasoning

- accuracy: the SpatialTree-Bench metric (``metricfunc``) on the extracted answer, in [0, 1]; None for a sample
  that is not ours to score (no metricfunc; with ``reward.accuracy=mcq_only``, a sample that is not MCQ);
- format: 1 when the completion follows the mode's format (think: think block then answer; auto_think:
  optional think block then answer), else 0; always 0 in ``plain`` mode;
- length (auto_think only): 0 up to the sample's free budget, then down linearly to -length_penalty at the cap;
- reasoning (auto_think only): the sample's think_reward when the completion opens with a non-empty think
  block, plus its reasoning bonus (once, or growing with the think length) when a non-trivial think block
  precedes a correct answer.

A sample's shaping is its level's (``reward.levels``), or a task override's (``reward.tasks``, keyed by task
type or leaf name). Every length is counted in ``reward.length_unit`` (rewards/length.py).
"""

from __future__ import annotations

import json
from functools import lru_cache

from rewards.completion import Completion, follows_auto_format, follows_think_format, parse_completion
from rewards.config import LevelShaping, RewardConfig, TaskShaping, check_reward_config
from rewards.did_you_mean import did_you_mean
from rewards.length import LengthCounter
from rewards.metrics import is_mcq, needs_judge
from rewards.scoring import score
from rewards.taxonomy import leaves, normalize

COMPONENTS = ("accuracy", "format", "length", "reasoning")
_NEUTRAL = LevelShaping()


class NoJudge(ValueError):
    """A gpteval sample reached the reward functions without an LLM judge configured."""


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


def task_override(cfg: RewardConfig, leaf=None, task=None) -> tuple[str, TaskShaping] | None:
    """``(key, entry)`` of ``reward.tasks`` that applies to a sample: its task type's entry, else its leaf's."""
    if not cfg.tasks:
        return None
    by_name = {normalize(k): (k, v) for k, v in cfg.tasks.items()}
    for name in (task, leaf):
        if name:
            hit = by_name.get(normalize(name))
            if hit is not None:
                return hit
    return None


def unmatched_task_keys(cfg: RewardConfig, seen_leaves, seen_tasks) -> list[str]:
    """One message per ``reward.tasks`` key that matches no prompt's task type or leaf (with the closest name
    among the task types in the prompts and the benchmark's leaves); keys marked ``optional`` are left out."""
    have = {normalize(x) for x in [*seen_leaves, *seen_tasks] if x}
    names = sorted({str(t) for t in seen_tasks if t}) + [n.name for n in leaves()]
    out = []
    for key, entry in cfg.tasks.items():
        if normalize(key) not in have and not entry.optional:
            out.append(f"reward.tasks.{key} matches no prompt's task type or leaf{did_you_mean(key, names, n=1)} "
                       f"(task types in the prompts: {', '.join(sorted({str(t) for t in seen_tasks if t})) or 'none'})")
    return out


def uses_lengths(cfg: RewardConfig) -> bool:
    """True when some sample's reward can depend on a length (so ``tokens`` needs a tokenizer)."""
    if cfg.mode != "auto_think":
        return False
    return bool(cfg.tasks) or any((lv.length_cap_tokens > 0 and lv.length_penalty != 0) or lv.reasoning_bonus != 0
                                  for lv in cfg.levels.values())


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
    a judged metric calls the judge each time it is asked.
    """
    if metricfunc is None or metricfunc == "":
        return None
    if needs_judge(metricfunc):
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


class Shaper:
    """A checked reward config with its length counter: the per-sample shaping and the components."""

    def __init__(self, cfg: RewardConfig, tokenizer=None):
        self.cfg = check_reward_config(cfg)
        self.count = LengthCounter(cfg.length_unit, tokenizer)
        if uses_lengths(cfg):
            self.count.require("reward.mode=auto_think with a length penalty, a reasoning bonus or reward.tasks")
        self._merged: dict[tuple, LevelShaping] = {}

    def shaping(self, level=None, leaf=None, task=None) -> LevelShaping:
        """The sample's shaping: a ``reward.tasks`` entry (task type first, then leaf) over its start
        (``like``'s level, else the sample's own), or the sample's level shaping."""
        own = level_shaping(self.cfg, level)
        hit = task_override(self.cfg, leaf, task)
        if hit is None:
            return own
        key, entry = hit
        memo = (key, str(level).upper() if entry.like is None else entry.like)
        if memo not in self._merged:
            base = self.cfg.levels.get(entry.like, _NEUTRAL) if entry.like else own
            self._merged[memo] = entry.apply(base)
        return self._merged[memo]

    def owns_accuracy(self, metricfunc) -> bool:
        """False for samples this config does not score for accuracy (no metricfunc; non-MCQ with mcq_only)."""
        if metricfunc is None or metricfunc == "":
            return False
        return self.cfg.accuracy != "mcq_only" or is_mcq(metricfunc)

    def length(self, shaping: LevelShaping, text: str) -> float:
        if self.cfg.mode != "auto_think" or shaping.length_cap_tokens <= 0 or shaping.length_penalty == 0:
            return 0.0
        return shaping.length_term(self.count(text))

    def reasoning(self, shaping: LevelShaping, c: Completion, acc: float | None) -> float:
        if self.cfg.mode != "auto_think":
            return 0.0
        value = 0.0
        if c.has_think:
            value += shaping.think_reward
        if (shaping.reasoning_bonus != 0 and acc is not None and acc >= self.cfg.correct_threshold
                and c.answer_after_think):
            value += shaping.bonus(self.count(c.think))
        return value

    def breakdown(self, text: str, *, metricfunc, answer, metric_extra=None, level=None, leaf=None, task=None,
                  judge=None, opened: str = "") -> dict:
        """All components and the weighted total of one completion. ``accuracy`` and ``reasoning`` are None
        (and count 0 in the total, as TRL's nansum does) when the sample's accuracy is not ours to score.
        ``opened``: the think block the prompt opened (:func:`parse_completion`); the length is the generated
        text's."""
        if needs_judge(metricfunc) and judge is None and self.owns_accuracy(metricfunc):
            raise NoJudge(no_judge_message(leaf))
        c = parse_completion(text, opened)
        shaping = self.shaping(level, leaf, task)
        acc = accuracy(metricfunc, c.answer, answer, metric_extra, judge) if self.owns_accuracy(metricfunc) else None
        parts = {
            "accuracy": acc,
            "format": format_component(self.cfg, c),
            "length": self.length(shaping, text),
            "reasoning": self.reasoning(shaping, c, acc) if acc is not None else None,
        }
        parts["score"] = sum(w * v for w, v in zip(weights(self.cfg), (parts[k] for k in COMPONENTS)) if v is not None)
        return parts


def no_judge_message(leaf=None) -> str:
    where = f" (leaf {leaf})" if leaf else ""
    return (f"a gpteval sample{where} needs an LLM judge and reward.judge.base_url is not set, so its reward would "
            "be a silent 0: configure reward.judge (docs/REWARDS.md) or drop the gpteval prompts")
