"""GRPO training: TRL's GRPOTrainer on one node (``grpo.backend=trl``) or verl on Ray (``grpo.backend=verl``).

``launch/grpo.py`` calls :func:`run` (train/grpo/backends.py: the shared checks, then one backend). Modules:
prompts (templates per mode), dataset (Samples -> the TRL prompt dataset, prompt-length checks), telemetry
(per-level metrics), trl_backend (the TRL run), verl_backend (parquet export, verl config, launch command).
"""

from __future__ import annotations

from train.grpo.backends import run

__all__ = ["run"]
