"""verl's custom reward function: the same components and total as the TRL path.

verl config::

    reward.custom_reward_function.path=<repo>/rewards/verl_reward.py
    reward.custom_reward_function.name=compute_score
    # optional, the recipe's reward section for every sample (dataclasses.asdict(recipe.reward)):
    reward.custom_reward_function.reward_kwargs.reward_config=...

Each parquet row carries ``reward_model.ground_truth`` = the answer and ``extra_info`` with the keys
``metricfunc`` (required), ``metric_extra`` (dict or JSON text), ``level`` ("L1".."L4") and optionally
``reward_config`` (a dict as above; it wins over the one in reward_kwargs). See docs/REWARDS.md.

verl gives no token ids here, so length is counted in whitespace-separated words; set
``reward.length_unit=words`` for the TRL backend too when both must give identical rewards.

Imports only the rewards package, numpy, scipy, Pillow and the standard library (verl loads this file in
its own environment). Loading it imports every metric's package (rewards/metrics/deps.py): when one is
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

require_all()

_CONFIGS: dict[str, RewardConfig] = {}


def _config(spec) -> RewardConfig:
    """A RewardConfig from a dict / JSON text / RewardConfig / None, parsed once per distinct value."""
    if isinstance(spec, RewardConfig):
        return spec
    key = spec if isinstance(spec, str) else json.dumps(spec, sort_keys=True, default=str)
    cfg = _CONFIGS.get(key)
    if cfg is None:
        cfg = reward_config_from_dict(json.loads(spec) if isinstance(spec, str) else spec)
        _CONFIGS[key] = cfg
    return cfg


def compute_score(data_source, solution_str, ground_truth, extra_info=None, reward_config=None, **kwargs) -> dict:
    """``{"score": total, "accuracy", "format", "length", "reasoning"}`` for one verl sample."""
    info = extra_info if isinstance(extra_info, dict) else (json.loads(extra_info) if extra_info else {})
    metricfunc = info.get("metricfunc")
    if not metricfunc:
        raise ValueError(f"verl sample from {data_source!r} has no extra_info['metricfunc'] (see docs/REWARDS.md)")
    cfg = _config(info["reward_config"] if info.get("reward_config") is not None else reward_config)
    # No completion_ids here: length is counted in words whatever length_unit says.
    result = total_reward(solution_str, metricfunc=metricfunc, answer=ground_truth,
                          metric_extra=info.get("metric_extra"), level=info.get("level"), cfg=cfg)
    return {"score": float(result["score"]), **{k: float(result[k]) for k in ("accuracy", "format", "length", "reasoning")}}

