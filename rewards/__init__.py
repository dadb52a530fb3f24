"""Scoring and rewards for SpatialTree: the benchmark's metrics (``score``, ``score_record``), GRPO reward
functions with hierarchy-aware shaping (``make_reward_funcs``), and verl's ``compute_score`` adapter
(``rewards.verl_reward``).

Imports only numpy, scipy (lazily) and the standard library, so verl's environment can load it.
"""

from rewards.config import JudgeConfig, LevelShaping, RewardConfig
from rewards.metrics import DETERMINISTIC, METRICS
from rewards.scoring import resolve_record, reward_columns, score, score_record

__all__ = [
    "DETERMINISTIC",
    "METRICS",
    "JudgeConfig",
    "LevelShaping",
    "RewardConfig",
    "resolve_record",
    "reward_columns",
    "score",
    "score_record",
]
