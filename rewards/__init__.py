"""Scoring and rewards for SpatialTree: the benchmark's metrics (``score``, ``score_record``), GRPO reward
functions with hierarchy-aware shaping (``make_reward_funcs``), and verl's ``compute_score`` adapter
(``rewards.verl_reward``).

Imports only numpy, scipy (lazily) and the standard library, so verl's environment can load it.
"""

from rewards.completion import parse_completion
from rewards.config import JudgeConfig, LevelShaping, RewardConfig, TaskShaping, reward_config_from_dict
from rewards.grpo import make_reward_funcs, reward_weights, total_reward
from rewards.metrics import DETERMINISTIC, METRICS
from rewards.metrics.llm_judge import JudgeClient
from rewards.scoring import resolve_record, reward_columns, score, score_record

__all__ = [
    "DETERMINISTIC",
    "METRICS",
    "JudgeConfig",
    "LevelShaping",
    "JudgeClient",
    "RewardConfig",
    "TaskShaping",
    "make_reward_funcs",
    "parse_completion",
    "resolve_record",
    "reward_columns",
    "score",
    "reward_config_from_dict",
    "reward_weights",
    "score_record",
    "total_reward",
]
