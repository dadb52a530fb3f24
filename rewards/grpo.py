"""GRPO reward functions in TRL's calling convention, routed per sample by its dataset columns.

    funcs = make_reward_funcs(recipe.reward, tokenizer=processor.tokenizer)   # accuracy, format, length, reasoning
    GRPOConfig(..., reward_weights=reward_weights(recipe.reward))
    GRPOTrainer(..., reward_funcs=funcs)

TRL calls each function as ``fn(prompts=..., completions=..., completion_ids=..., **columns)`` where every
dataset column arrives as a list aligned with ``completions``. The columns used (see docs/REWARDS.md):
``metricfunc`` (required), ``answer`` (required), ``metric_extra`` (dict or JSON text; optional), ``level``
("L1".."L4"; optional), ``leaf`` and ``task`` (optional; they select ``reward.tasks`` overrides). The weighted
sum TRL forms equals :func:`total_reward` for the same sample.
"""

from __future__ import annotations

import json
from collections import OrderedDict, defaultdict

from rewards.completion import completion_text, parse_completion
from rewards.config import RewardConfig
from rewards.metrics import needs_judge
from rewards.metrics.llm_judge import JudgeClient
from rewards.shaping import (
    COMPONENTS,
    NoJudge,
    Shaper,
    accuracy,
    extra_key,
    format_component,
    no_judge_message,
    weights,
)

_JUDGED_MAX = 4096

REQUIRED_COLUMNS = ("metricfunc", "answer")
_ROUTING = ("metricfunc", "answer", "metric_extra", "level", "leaf", "task")


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
                       f"metric_extra, level, leaf, task; see docs/REWARDS.md); the batch has {have}")
    return [None] * n


class _Batch:
    """One TRL call's samples: texts, parsed completions, routing columns and each sample's shaping."""

    def __init__(self, shaper: Shaper, completions, kwargs: dict, fn_name: str, opened: str = ""):
        n = len(completions)
        self.texts = [completion_text(c) for c in completions]
        """The generated texts (lengths are counted on them)."""
        self.parsed = [parse_completion(t, opened) for t in self.texts]
        """Each read after the think block its prompt opened (``opened``)."""
        self.metricfunc = _column(kwargs, "metricfunc", n, fn_name)
        self.answer = _column(kwargs, "answer", n, fn_name)
        self.extra = _column(kwargs, "metric_extra", n, fn_name)
        self.level = _column(kwargs, "level", n, fn_name)
        self.leaf = _column(kwargs, "leaf", n, fn_name)
        self.task = _column(kwargs, "task", n, fn_name)
        self.shaping = [shaper.shaping(lv, lf, t) for lv, lf, t in zip(self.level, self.leaf, self.task)]
        self.accuracies: list | None = None
        """Filled by the first function that scores accuracy (accuracy, then reasoning reads it)."""


def make_reward_funcs(cfg: RewardConfig, judge=None, tokenizer=None, opened: str = "") -> list:
    """The four component functions (``__name__`` accuracy, format, length, reasoning) for TRL.

    ``judge``: a callable(messages) -> reply for ``gpteval`` samples; default: a JudgeClient built from
    ``cfg.judge`` when its base_url is set. Without a judge a gpteval sample raises (launch/grpo.py refuses
    such prompts at load time already). ``tokenizer``: the policy's tokenizer (object or path), needed when
    ``cfg.length_unit`` is ``tokens`` and the config shapes lengths. ``opened``: the think block every prompt's
    generation prompt leaves open (Qwen3.5 with thinking on: ``<think>\\n``), read before each completion
    (:func:`rewards.completion.parse_completion`); "" when the prompts open none.
    """
    shaper = Shaper(cfg, tokenizer)
    if judge is None:
        judge = JudgeClient.from_config(cfg.judge)

    judged: OrderedDict = OrderedDict()  # gpteval grades, so accuracy and reasoning ask the judge once
    last: dict = {}  # the batch TRL's reward call is scoring: parsed and scored once for all four functions

    def _batch(completions, kwargs: dict, fn_name: str) -> _Batch:
        """TRL calls the four functions one after another on the same batch: the completions are parsed (and
        the accuracies computed, :func:`_accuracies`) once per batch. The batch is recognised by its contents
        (completion texts and routing columns), so a cached answer is always the answer."""
        key = (tuple(completion_text(c) for c in completions),
               *(None if kwargs.get(c) is None else tuple(kwargs[c]) for c in _ROUTING))
        if last.get("key") != key:
            last["key"], last["batch"] = key, _Batch(shaper, completions, kwargs, fn_name, opened)
        return last["batch"]

    def _one(metricfunc, c, answer, extra, leaf):
        if not shaper.owns_accuracy(metricfunc):
            return None
        if not needs_judge(metricfunc):
            return accuracy(metricfunc, c.answer, answer, extra, judge)
        if judge is None:
            raise NoJudge(no_judge_message(leaf))
        key = (c.answer, json.dumps(answer, default=str), extra_key(extra))
        if key not in judged:
            judged[key] = accuracy(metricfunc, c.answer, answer, extra, judge)
            if len(judged) > _JUDGED_MAX:
                judged.popitem(last=False)
        return judged[key]

    def _accuracies(b: _Batch) -> list:
        if b.accuracies is None:
            b.accuracies = [_one(m, c, a, e, lf) for m, c, a, e, lf in zip(b.metricfunc, b.parsed, b.answer, b.extra,
                                                                             b.leaf)]
        return b.accuracies

    def accuracy_reward(prompts=None, completions=(), **kwargs) -> list:
        b = _batch(completions, kwargs, "accuracy")
        values = _accuracies(b)
        log_metric = kwargs.get("log_metric")
        if callable(log_metric):  # per-level accuracy next to TRL's own metrics
            by_level = defaultdict(list)
            for lv, v in zip(b.level, values):
                if v is not None and lv:
                    by_level[str(lv).upper()].append(v)
            for lv, vs in sorted(by_level.items()):
                log_metric(f"accuracy/{lv}", sum(vs) / len(vs))
            if values:  # samples whose accuracy is not ours to score are shown, never folded in as 0
                log_metric("accuracy/unscored_fraction", sum(v is None for v in values) / len(values))
        log_extra = kwargs.get("log_extra")
        if callable(log_extra):
            log_extra("level", [str(lv) if lv is not None else "" for lv in b.level])
        return values

    def format_reward(prompts=None, completions=(), **kwargs) -> list:
        b = _batch(completions, kwargs, "format")
        return [format_component(cfg, c) for c in b.parsed]

    def length_reward(prompts=None, completions=(), **kwargs) -> list:
        b = _batch(completions, kwargs, "length")
        return [shaper.length(s, t) for s, t in zip(b.shaping, b.texts)]

    def reasoning_reward(prompts=None, completions=(), **kwargs) -> list:
        b = _batch(completions, kwargs, "reasoning")
        return [None if acc is None else shaper.reasoning(s, c, acc)
                for c, s, acc in zip(b.parsed, b.shaping, _accuracies(b))]

    funcs = [accuracy_reward, format_reward, length_reward, reasoning_reward]
    for fn, name in zip(funcs, COMPONENTS):
        fn.__name__ = fn.__qualname__ = name
    return funcs


def total_reward(completion, *, metricfunc, answer, metric_extra=None, level=None, leaf=None, task=None,
                 cfg: RewardConfig | None = None, tokenizer=None, judge=None, shaper: Shaper | None = None,
                 opened: str = "") -> dict:
    """``{"score": total, "accuracy", "format", "length", "reasoning"}`` for one completion: the same total as
    TRL's weighted sum of :func:`make_reward_funcs` (a None component counts 0, like TRL's nansum).
    ``shaper``: a prebuilt :class:`Shaper` (then ``cfg`` and ``tokenizer`` are ignored); ``opened`` as in
    :func:`make_reward_funcs`."""
    shaper = shaper or Shaper(cfg or RewardConfig(), tokenizer)
    if judge is None and needs_judge(metricfunc):
        judge = JudgeClient.from_config(shaper.cfg.judge)
    return shaper.breakdown(completion_text(completion), metricfunc=metricfunc, answer=answer,
                            metric_extra=metric_extra, level=level, leaf=leaf, task=task, judge=judge,
                            opened=opened)
