"""verl's custom reward function: the same components and total as the TRL path.

verl config::

    reward.custom_reward_function.path=<repo>/rewards/verl_reward.py
    reward.custom_reward_function.name=compute_score
    # optional, the recipe's reward section for every sample (dataclasses.asdict(recipe.reward)):
    reward.custom_reward_function.reward_kwargs.reward_config=...
    # with reward.length_unit=tokens: the policy's tokenizer (a path or hub name; loaded once per process)
    reward.custom_reward_function.reward_kwargs.tokenizer=<model path>

Each parquet row carries ``reward_model.ground_truth`` = the answer and ``extra_info`` with the keys
``metricfunc`` (required), ``metric_extra`` (dict or JSON text), ``level`` ("L1".."L4"), ``leaf`` and ``task``
(they select ``reward.tasks`` overrides) and optionally ``reward_config`` (a dict as above; it wins over the
one in reward_kwargs). See docs/REWARDS.md.

verl gives the reward function only the decoded text; lengths are counted from it in ``reward.length_unit``
exactly as the TRL backend counts them (rewards/length.py), so both give identical rewards.

Imports only the rewards package, numpy, scipy, Pillow and the standard library (verl loads this file in
its own environment); ``transformers`` (in verl's environment) only to load the tokenizer for
``length_unit=tokens``. Loading it imports every metric's package (rewards/metrics/deps.py): when one is
missing or broken in verl's environment, verl's reward loader fails with an ImportError naming the metric
and the package, instead of the reward scoring those samples 0.
"""

from __future__ import annotations

import json
import os
import sys

if __package__ in (None, ""):  # loaded by file path (verl's load_extern_type): make `rewards` importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from rewards.config import RewardConfig, reward_config_from_dict  # noqa: E402
from rewards.grpo import total_reward  # noqa: E402
from rewards.metrics.deps import require_all  # noqa: E402
from rewards.shaping import Shaper  # noqa: E402

require_all()

_SHAPERS: dict[tuple, Shaper] = {}


def _shaper(spec, tokenizer) -> Shaper:
    """A Shaper for a reward config (dict / JSON text / RewardConfig / None) and a tokenizer (path or object),
    built once per distinct pair."""
    if isinstance(spec, RewardConfig):
        return Shaper(spec, tokenizer)
    key = (spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True, default=str),
           tokenizer if isinstance(tokenizer, str) or tokenizer is None else id(tokenizer))
    shaper = _SHAPERS.get(key)
    if shaper is None:
        cfg = reward_config_from_dict(json.loads(spec) if isinstance(spec, str) else spec)
        shaper = _SHAPERS[key] = Shaper(cfg, tokenizer)
    return shaper


def compute_score(data_source, solution_str, ground_truth, extra_info=None, reward_config=None, tokenizer=None,
                  opened: str = "", **kwargs) -> dict:
    """``{"score": total, "accuracy", "format", "length", "reasoning"}`` for one verl sample. ``opened``: the
    think block verl's rendered prompts leave open (reward_kwargs; see rewards.grpo.make_reward_funcs)."""
    info = extra_info if isinstance(extra_info, dict) else (json.loads(extra_info) if extra_info else {})
    metricfunc = info.get("metricfunc")
    if not metricfunc:
        raise ValueError(f"verl sample from {data_source!r} has no extra_info['metricfunc'] (see docs/REWARDS.md)")
    shaper = _shaper(info["reward_config"] if info.get("reward_config") is not None else reward_config, tokenizer)
    if not shaper.owns_accuracy(metricfunc):  # verl needs a number; the export never writes such rows
        raise ValueError(f"verl sample from {data_source!r} ({info.get('where', 'no row')}): metricfunc {metricfunc!r} "
                         f"is not multiple choice and reward.accuracy={shaper.cfg.accuracy} scores only MCQ samples "
                         "(launch/grpo.py leaves them out of the parquet)")
    result = total_reward(solution_str, metricfunc=metricfunc, answer=ground_truth,
                          metric_extra=info.get("metric_extra"), level=info.get("level"), leaf=info.get("leaf"),
                          task=info.get("task"), shaper=shaper, opened=opened)
    return {"score": float(result["score"]), **{k: float(result[k]) for k in ("accuracy", "format", "length", "reasoning")}}

