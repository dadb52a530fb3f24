"""GRPO reward functions in TRL's calling convention, routed per sample by its dataset columns.

    funcs = make_reward_funcs(recipe.reward)              # accuracy, format, length, reasoning
    GRPOConfig(..., reward_weights=reward_weights(recipe.reward))
    GRPOTrainer(..., reward_funcs=funcs)

TRL calls each function as ``fn(prompts=..., completions=..., completion_ids=..., **columns)`` where every
dataset column arrives as a list aligned with ``completions``. The columns used (see docs/REWARDS.md):
``metricfunc`` (required), ``answer`` (required), ``metric_extra`` (dict or JSON text; optional) and ``level``
("L1".."L4"; optional). The weighted sum TRL forms equals :func:`total_reward` for the same sample.
"""

from __future__ import annotations

import json
from collections import OrderedDict, defaultdict

from rewards.completion import completion_text, parse_completion
from rewards.config import RewardConfig, check_reward_config
from rewards.metrics.llm_judge import JudgeClient
from rewards.shaping import (
    COMPONENTS,
    accuracy,
    breakdown,
    count_length,
    extra_key,
    format_component,
    length_component,
    level_shaping,
    reasoning_component,
    weights,
)

_JUDGED_MAX = 4096

REQUIRED_COLUMNS = ("metricfunc", "answer")


def reward_weights(cfg: RewardConfig) -> list[float]:
    """TRL's ``reward_weights`` for the functions of :func:`make_reward_funcs`, in the same order."""
    return weights(cfg)


def _column(kwargs: dict, name: str, n: int, fn_name: str) -> list:
    if name in kwargs and kwargs[name] is not None:
        values = list(kwargs[name])
        if len(values) != n:
            raise ValueError(f"reward {fn_name}: column {name!r} has {len(values)} values for {n} completions")
        return values
    if name in REQUIRED_COLUMNS:
        have = sorted(k for k in kwargs if k not in ("trainer_state", "log_extra", "log_metric", "completion_ids"))
        raise KeyError(f"reward {fn_name} needs the dataset column {name!r} (columns: metricfunc, answer, "
                       f"metric_extra, level; see docs/REWARDS.md); the batch has {have}")
    return [None] * n


class _Batch:
    """One TRL call's samples: texts, parsed completions and routing columns."""

    def __init__(self, completions, kwargs: dict, fn_name: str):
        n = len(completions)
        self.texts = [completion_text(c) for c in completions]
        self.parsed = [parse_completion(t) for t in self.texts]
        self.metricfunc = _column(kwargs, "metricfunc", n, fn_name)
        self.answer = _column(kwargs, "answer", n, fn_name)
        self.extra = _column(kwargs, "metric_extra", n, fn_name)
        self.level = _column(kwargs, "level", n, fn_name)
        ids = kwargs.get("completion_ids")
        self.ids = list(ids) if ids is not None else [None] * n


def make_reward_funcs(cfg: RewardConfig, judge=None) -> list:
    """The four component functions (``__name__`` accuracy, format, length, reasoning) for TRL.

    ``judge``: a callable(messages) -> reply for ``gpteval`` samples; default: a JudgeClient built from
    ``cfg.judge`` when its base_url is set (else gpteval samples score 0 with the reason in the logs).
    """
    check_reward_config(cfg)
    if judge is None:
        judge = JudgeClient.from_config(cfg.judge)

    judged: OrderedDict = OrderedDict()  # gpteval grades, so accuracy and reasoning ask the judge once

    def _one(metricfunc, c, answer, extra):
        if metricfunc != "gpteval":
            return accuracy(metricfunc, c.answer, answer, extra, judge)
        key = (c.answer, json.dumps(answer, default=str), extra_key(extra))
        if key not in judged:
            judged[key] = accuracy(metricfunc, c.answer, answer, extra, judge)
            if len(judged) > _JUDGED_MAX:
                judged.popitem(last=False)
        return judged[key]

    def _accuracies(b: _Batch) -> list:
        return [_one(m, c, a, e) for m, c, a, e in zip(b.metricfunc, b.parsed, b.answer, b.extra)]

    def accuracy_reward(prompts=None, completions=(), **kwargs) -> list:
        b = _Batch(completions, kwargs, "accuracy")
        values = _accuracies(b)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):  # per-level accuracy next to TRL's own metrics
            by_level = defaultdict(list)
            for lv, v in zip(b.level, values):
                if v is not None and lv:
                    by_level[str(lv).upper()].append(v)
            for lv, vs in sorted(by_level.items()):
                log_metric(f"accuracy/{lv}", sum(vs) / len(vs))
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):
            log_extra("level", [str(lv) if lv is not None else "" for lv in b.level])
        return values

    def format_reward(prompts=None, completions=(), **kwargs) -> list:
        b = _Batch(completions, kwargs, "format")
        return [format_component(cfg, c) for c in b.parsed]

    def length_reward(prompts=None, completions=(), **kwargs) -> list:
        b = _Batch(completions, kwargs, "length")
        return [length_component(cfg, level_shaping(cfg, lv), count_length(cfg, t, ids))
                for t, lv, ids in zip(b.texts, b.level, b.ids)]

    def reasoning_reward(prompts=None, completions=(), **kwargs) -> list:
        b = _Batch(completions, kwargs, "reasoning")
        return [None if acc is None else reasoning_component(cfg, level_shaping(cfg, lv), c, acc)
                for c, lv, acc in zip(b.parsed, b.level, _accuracies(b))]

    funcs = [accuracy_reward, format_reward, length_reward, reasoning_reward]
    for fn, name in zip(funcs, COMPONENTS):
        fn.__name__ = fn.__qualname__ = name
    return funcs


def total_reward(completion, *, metricfunc, answer, metric_extra=None, level=None, cfg: RewardConfig | None = None,
                 completion_ids=None, judge=None) -> dict:
    """``{"score": total, "accuracy", "format", "length", "reasoning"}`` for one completion: the same total as
    TRL's weighted sum of :func:`make_reward_funcs` (a None component counts 0, like TRL's nansum)."""
    cfg = check_reward_config(cfg or RewardConfig())
    if judge is None and metricfunc == "gpteval":
        judge = JudgeClient.from_config(cfg.judge)
    return breakdown(cfg, completion_text(completion), metricfunc=metricfunc, answer=answer, metric_extra=metric_extra,
                     level=level, completion_ids=completion_ids, judge=judge)
