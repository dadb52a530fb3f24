"""Per-level GRPO telemetry: what each SpatialTree level's completions earn and look like.

The reward functions are wrapped: each wrapper passes its call through unchanged and keeps the
per-completion values. When every component has scored a batch, the batch's statistics per level go
to TRL's ``log_metric`` (averaged by TRL over the logging interval and across processes), so they
appear beside TRL's own metrics in every logger (metrics.jsonl, TensorBoard, wandb):

    L1/reward                total reward (the weighted sum TRL optimises)
    L1/rewards/<component>   each component (accuracy, format, length, reasoning, ...)
    L1/completion_length     completion tokens
    L1/think_fraction        share of completions with a non-empty <think> block
    L1/truncated_fraction    share of completions cut at max_completion_length (no EOS)
    think_fraction           the same over all levels (TRL already logs reward, lengths and clipped_ratio)

A completion counts as thinking exactly when the reasoning reward would pay for it: rewards.completion parses
both (a non-blank think block opening the completion), each after the think block its prompt opened (``opened``:
Qwen3.5 with thinking on ends its generation prompt with ``<think>\n``, so the completion starts inside it).

Samples without a level are reported under ``other``.
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Callable, Sequence

from rewards.completion import completion_text, parse_completion


def _mean(values: Sequence[float]) -> float | None:
    vals = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return sum(vals) / len(vals) if vals else None


class LevelTelemetry:
    """Wraps reward functions and logs per-level statistics of every scored batch."""

    def __init__(self, weights: Sequence[float], eos_token_ids: Sequence[int], prefix: str = "", opened: str = ""):
        self.weights = list(weights)
        self.opened = opened
        """The think block the generation prompts leave open, read before every completion."""
        self.eos = set(int(t) for t in eos_token_ids)
        self.prefix = prefix
        self._names: list[str] = []
        self._batch: dict[str, list] = {}
        self._batch_key: int | None = None
        self.last: dict[str, float] = {}
        """The statistics of the last complete batch (for tests and progress lines)."""

    def wrap(self, funcs: Sequence[Callable]) -> list[Callable]:
        """The reward functions, each recording its output; names (``__name__``) are kept for TRL's logs."""
        if len(funcs) != len(self.weights):
            raise ValueError(f"{len(funcs)} reward functions but {len(self.weights)} weights")
        self._names = [getattr(f, "__name__", f"reward_{i}") for i, f in enumerate(funcs)]
        return [self._wrap_one(f, name) for f, name in zip(funcs, self._names)]

    def _wrap_one(self, func: Callable, name: str) -> Callable:
        @functools.wraps(func)
        def wrapped(prompts, completions, **kwargs):
            values = func(prompts=prompts, completions=completions, **kwargs)
            self.record(name, values, completions, kwargs)
            return values

        wrapped.__name__ = name
        return wrapped

    def record(self, name: str, values: Sequence[float | None], completions: list, kwargs: dict) -> None:
        """Keep one component's values; when all components of this batch are in, compute and log."""
        key = id(completions)
        if key != self._batch_key:
            self._batch, self._batch_key = {}, key
        self._batch[name] = [float("nan") if v is None else float(v) for v in values]
        if len(self._batch) == len(self._names):
            stats = self.batch_stats(self._batch, completions, kwargs)
            self.last = stats
            log_metric = kwargs.get("log_metric")
            if log_metric is not None:
                for metric, value in stats.items():
                    log_metric(self.prefix + metric, value)
            log_extra = kwargs.get("log_extra")
            if log_extra is not None:  # the sample's level, leaf, id, answer and media for the rollout log
                from train.grpo.rollouts import extra_columns

                for column, values in extra_columns(kwargs, len(completions)).items():
                    log_extra(column, values)
            self._batch, self._batch_key = {}, None

    def batch_stats(self, components: dict[str, list[float]], completions: list, kwargs: dict) -> dict[str, float]:
        """Per-level means of total reward, each component, length, think and truncation fractions."""
        n = len(completions)
        levels = [lv or "other" for lv in (kwargs.get("level") or [None] * n)]
        ids = kwargs.get("completion_ids") or [None] * n
        texts = [completion_text(c) for c in completions]
        totals = []
        for i in range(n):
            vals = [(w, components[name][i]) for w, name in zip(self.weights, self._names)]
            finite = [w * v for w, v in vals if not math.isnan(v)]
            totals.append(sum(finite) if finite else float("nan"))
        think = [1.0 if parse_completion(t, self.opened).has_think else 0.0 for t in texts]
        lengths = [float(len(x)) if x is not None else float("nan") for x in ids]
        truncated = [float(bool(x) and int(x[-1]) not in self.eos) if x is not None else float("nan") for x in ids]

        by_level: dict[str, list[int]] = defaultdict(list)
        for i, lv in enumerate(levels):
            by_level[lv].append(i)
        stats: dict[str, float] = {}
        for lv, idx in sorted(by_level.items()):
            def mean_of(values, idx=idx):
                return _mean([values[i] for i in idx])
            entries = {"reward": mean_of(totals), "completion_length": mean_of(lengths),
                       "think_fraction": mean_of(think), "truncated_fraction": mean_of(truncated)}
            for name in self._names:
                entries[f"rewards/{name}"] = mean_of(components[name])
            for key, value in entries.items():
                if value is not None:
                    stats[f"{lv}/{key}"] = value
        overall = _mean(think)
        if overall is not None:
            stats["think_fraction"] = overall
        return stats
