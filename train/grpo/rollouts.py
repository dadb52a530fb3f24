"""GRPO's sampled rollout log: ``RUN_DIR/rollouts.jsonl``, read by the run page (eval_hooks/html).

Every EVERY_STEPS optimizer steps (and the first logged step), at the trainer's log call, the last generation
batch TRL keeps for its own completion log (``trainer._logs``: prompts, completions, each reward component, the
advantages, gathered over all ranks) is appended, one line per completion:

    {"step", "group", "level", "leaf", "id", "answer", "media": [image paths], "prompt", "completion",
     "rewards": {component: value}, "reward": weighted sum, "advantage"}

Media are references (paths), not copies. The file is bounded: at most MAX_ROWS lines, then logging stops with
one warning. The sample's level, leaf, id, answer and image paths reach ``trainer._logs`` through TRL's
``log_extra`` (the telemetry wrapper calls :func:`extra_columns` once per scored batch). With wandb in
``train.report_to`` the same rows go to a wandb table with their images (eval_hooks/wandb_tables.py).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from eval_hooks.io import append_jsonl
from rewards.completion import completion_text

log = logging.getLogger(__name__)

ROLLOUTS_JSONL = "rollouts.jsonl"
EVERY_STEPS = 10
"""Log one generation batch every this many steps, plus the first (project choice: a 1,000-step run logs ~100)."""
MAX_ROWS = 5000
"""Lines at most in rollouts.jsonl (project choice: a few MB; the page opens it in well under 2 s)."""
EXTRA = ("st_level", "st_leaf", "st_id", "st_answer", "st_media")
"""The columns :func:`extra_columns` adds to TRL's completion log."""


def extra_columns(kwargs: dict[str, Any], n: int) -> dict[str, list[str]]:
    """The batch's per-completion sample fields as strings (TRL gathers them across ranks with the completions)."""
    def col(name: str) -> list[Any]:
        return list(kwargs.get(name) or [None] * n)

    return {"st_level": [str(v or "") for v in col("level")], "st_leaf": [str(v or "") for v in col("leaf")],
            "st_id": [str(v or "") for v in col("id")],
            "st_answer": [json.dumps(v, ensure_ascii=False, default=str) for v in col("answer")],
            "st_media": [json.dumps([p for p in (v or []) if isinstance(p, str)]) for v in col("image_paths")]}


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def _prompt_text(prompt: Any) -> str:
    """The user text of a conversational prompt (TRL passes the chat messages)."""
    if isinstance(prompt, str):
        return prompt
    parts = []
    for message in prompt if isinstance(prompt, list) else []:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):
            parts += [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
    return "\n".join(p for p in parts if p)


def batch_rows(logs: dict[str, Any], step: int, num_generations: int, weights: dict[str, float]) -> list[dict]:
    """The rows of the generation batch in ``logs`` (TRL's ``trainer._logs``)."""
    prompts, completions = list(logs.get("prompt", ())), list(logs.get("completion", ()))
    rewards = {name: list(values) for name, values in (logs.get("rewards") or {}).items()}
    advantages = list(logs.get("advantages", ()))
    extra = {k: list(v) for k, v in (logs.get("extra") or {}).items()}
    n = len(completions)
    rows = []
    for i in range(n):
        def ex(name: str, default: str = "", i: int = i) -> str:
            values = extra.get(name) or []
            return values[i] if i < len(values) and values[i] is not None else default

        comps = {name: _num(values[i]) if i < len(values) else None for name, values in rewards.items()}
        scored = [(weights.get(name, 1.0), v) for name, v in comps.items() if v is not None]
        rows.append({
            "step": step, "group": i // max(num_generations, 1), "level": ex("st_level") or "other",
            "leaf": ex("st_leaf") or None, "id": ex("st_id") or None, "answer": json.loads(ex("st_answer", "null")),
            "media": json.loads(ex("st_media", "[]")), "prompt": _prompt_text(prompts[i]) if i < len(prompts) else "",
            "completion": completion_text(completions[i]), "rewards": comps,
            "reward": sum(w * v for w, v in scored) if scored else None,
            "advantage": _num(advantages[i]) if i < len(advantages) else None})
    return rows


class RolloutLog(TrainerCallback):
    """Appends sampled generation batches to RUN_DIR/rollouts.jsonl (rank 0), and to wandb when it is on."""

    def __init__(self, trainer: Any, run_dir: str | Path, reward_names: list[str], reward_weights: list[float],
                 every: int = EVERY_STEPS, max_rows: int = MAX_ROWS, wandb: bool = False):
        self.trainer = trainer
        self.path = Path(run_dir) / ROLLOUTS_JSONL
        self.weights = dict(zip(reward_names, reward_weights))
        self.every, self.max_rows, self.wandb = max(1, every), max_rows, wandb
        self.rows_written = sum(1 for _ in open(self.path)) if self.path.is_file() else 0  # a resumed run
        self._last_batch: tuple | None = None
        self._logged_any = False

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or self.rows_written >= self.max_rows:
            return
        if self._logged_any and state.global_step % self.every:
            return
        trl_logs = getattr(self.trainer, "_logs", None)
        if not trl_logs or not trl_logs.get("completion"):
            return
        batch_key = (len(trl_logs["completion"]), str(trl_logs["completion"][0])[:200], state.global_step)
        if batch_key == self._last_batch:
            return
        self._last_batch = batch_key
        rows = batch_rows(trl_logs, state.global_step, getattr(args, "num_generations", 1) or 1, self.weights)
        rows = rows[: self.max_rows - self.rows_written]
        for row in rows:
            append_jsonl(self.path, row)
        self.rows_written += len(rows)
        self._logged_any = True
        if self.rows_written >= self.max_rows:
            log.warning("rollouts: %s reached %d lines; no more rollouts are logged", self.path, self.max_rows)
        if self.wandb:
            from eval_hooks.wandb_tables import log_rollouts

            log_rollouts(rows)
