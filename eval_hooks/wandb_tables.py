"""Evaluation samples and GRPO rollouts as wandb tables with their images (when ``train.report_to`` has wandb).

wandb is imported only here and only when a run is active, so nothing else depends on it. Images are referenced
by path and wandb copies them into its run (offline runs keep them under ``wandb/offline-run-*/files/media``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

log = logging.getLogger(__name__)

MAX_TABLE_ROWS = 500
"""Rows per logged table (project choice: a wandb table of thousands of images is slow to open)."""


def active_run() -> Any:
    """The active wandb run, or None (wandb not installed, or no run started)."""
    try:
        import wandb
    except ImportError:
        return None
    return wandb.run


def _image(paths: Sequence[Any]) -> Any:
    import wandb

    first = next((p for p in paths if isinstance(p, str)), None)
    if first is None:
        return None
    try:
        return wandb.Image(first)
    except (OSError, ValueError) as exc:  # a file gone since the run read it: the row keeps its text
        log.warning("wandb table: image %s not added (%s)", first, exc)
        return None


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def log_samples(records: Sequence[dict[str, Any]], step: int | str, key: str = "bench/samples") -> bool:
    """One table of evaluation records (image, leaf, prompt, response, answer, score); False without a wandb run."""
    run = active_run()
    if run is None:
        return False
    import wandb

    columns = ["step", "id", "leaf", "image", "prompt", "response", "answer", "score"]
    table = wandb.Table(columns=columns)
    for r in records[:MAX_TABLE_ROWS]:
        table.add_data(str(step), str(r.get("id")), r.get("leaf"), _image(r.get("images") or []),
                       _text(r.get("prompt", "")), _text(r.get("response", "")), _text(r.get("answer")),
                       float(r.get("score") or 0.0))
    run.log({key: table})
    return True


def log_rollouts(rows: Sequence[dict[str, Any]], key: str = "rollouts") -> bool:
    """One table of rollout rows (train/grpo/rollouts.py's format); False without a wandb run."""
    run = active_run()
    if run is None or not rows:
        return False
    import wandb

    components = sorted({c for r in rows for c in (r.get("rewards") or {})})
    columns = ["step", "level", "leaf", "group", "image", "prompt", "completion", *components, "reward", "advantage"]
    table = wandb.Table(columns=columns)
    for r in rows[:MAX_TABLE_ROWS]:
        rewards = r.get("rewards") or {}
        table.add_data(int(r["step"]), r.get("level"), r.get("leaf"), int(r.get("group", 0)),
                       _image(r.get("media") or []), _text(r.get("prompt", "")), _text(r.get("completion", "")),
                       *[rewards.get(c) for c in components], r.get("reward"), r.get("advantage"))
    run.log({key: table})
    return True
