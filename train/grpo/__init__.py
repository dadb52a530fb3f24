"""GRPO training: TRL's GRPOTrainer on one node (``grpo.backend=trl``) or verl on Ray (``grpo.backend=verl``).

``launch/grpo.py`` calls :func:`run`. Modules: prompts (templates per mode), dataset (Samples -> the
TRL prompt dataset, prompt-length checks), telemetry (per-level metrics), trl_backend (the TRL run),
verl_backend (parquet export, verl config, launch command).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from train.config import Recipe


def run(recipe: Recipe, flags: list[str]) -> int:
    """Train with the recipe's GRPO backend; return the process exit code."""
    from train.grpo.trl_backend import run as _run

    return _run(recipe, flags)


__all__ = ["run"]
