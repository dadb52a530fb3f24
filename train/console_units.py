"""The Trainer's console log lines with benchmark scores as a person reads them: x100, one decimal, labelled %.

transformers' progress callback prints every logged dict as it is, so an evaluation showed up as
``'bench/overall': 0.001628``. :class:`PercentProgress` prints ``'bench/overall': '0.2 %'`` instead; what is
logged (metrics.jsonl, TensorBoard, wandb) keeps the fractions.
"""

from __future__ import annotations

from typing import Any

from transformers.trainer_callback import ProgressCallback

NOT_SCORES = ("bench/eval_seconds", "bench/num_samples")


def is_score(key: str, value: Any) -> bool:
    return key.startswith("bench/") and key not in NOT_SCORES and isinstance(value, float)


def percent_logs(logs: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``logs`` with every benchmark score as ``"20.0 %"``."""
    return {k: (f"{100 * v:.1f} %" if is_score(k, v) else v) for k, v in logs.items()}


class PercentProgress(ProgressCallback):
    def on_log(self, args, state, control, logs=None, **kwargs):
        return super().on_log(args, state, control, logs=percent_logs(logs) if logs else logs, **kwargs)


def install(trainer: Any) -> None:
    """Replace the trainer's progress callback by :class:`PercentProgress` (nothing when tqdm is off)."""
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(PercentProgress())
