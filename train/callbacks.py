"""Where metrics go (run_dir/metrics.jsonl, tensorboard, wandb) and how a run is stopped politely.

- :class:`JsonlMetrics`: one JSON line per log step with ``train/loss``, ``train/lr``,
  ``train/grad_norm``, ``train/tokens_per_s``, ``train/nonpad_fraction`` ... (rank 0 only).
- :func:`hf_report_to`: the recipe's ``train.report_to`` mapped onto the Trainer's integrations
  (tensorboard under run_dir/tensorboard, wandb offline when there is no login).
- :class:`Preemption`: SIGTERM / SIGUSR1 set a flag; at the next optimizer-step boundary every
  rank agrees, a checkpoint is saved and training stops (the launcher then exits 0).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from transformers import TrainerCallback

if TYPE_CHECKING:
    from train.config import Recipe

log = logging.getLogger(__name__)

# Trainer log keys -> our metric names.
RENAME = {"loss": "train/loss", "learning_rate": "train/lr", "grad_norm": "train/grad_norm",
          "tokens_per_s": "train/tokens_per_s", "samples_per_s": "train/samples_per_s",
          "nonpad_fraction": "train/nonpad_fraction"}
KNOWN_SINKS = ("jsonl", "tensorboard", "wandb")


_SET_HERE: dict[str, str] = {}
"""Environment variables this process set for an earlier run (an in-process sweep or test runs several)."""


def _run_env(key: str, value: str) -> None:
    """``os.environ[key] = value`` unless the user set ``key``: a value set here for an earlier run of this process
    is replaced (``setdefault`` would send every later run's logs to the first run's directory)."""
    if key in os.environ and os.environ[key] != _SET_HERE.get(key):
        return
    os.environ[key] = _SET_HERE[key] = value


def hf_report_to(report_to: list[str], run_dir: Path) -> list[str]:
    """The Trainer's ``report_to`` for our sinks; prepares tensorboard and wandb directories."""
    unknown = [s for s in report_to if s not in KNOWN_SINKS]
    if unknown:
        raise ValueError(f"train.report_to: unknown sink(s) {unknown}; known: {', '.join(KNOWN_SINKS)}")
    out = []
    if "tensorboard" in report_to:
        _run_env("TENSORBOARD_LOGGING_DIR", str(run_dir / "tensorboard"))
        out.append("tensorboard")
    if "wandb" in report_to:
        _run_env("WANDB_DIR", str(run_dir))
        if "WANDB_API_KEY" not in os.environ and "WANDB_MODE" not in os.environ:
            os.environ["WANDB_MODE"] = "offline"
            log.info("wandb: no WANDB_API_KEY, logging offline under %s (wandb sync to upload)", run_dir)
        out.append("wandb")
    return out


class JsonlMetrics(TrainerCallback):
    """Appends every log of rank 0 to ``path`` as one JSON object per line."""

    writes_metrics_jsonl = True  # eval_hooks' callback then leaves metrics.jsonl to us

    def __init__(self, path: Path):
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        record = {"step": state.global_step, "time": round(time.time(), 3)}
        for key, value in logs.items():
            record[RENAME.get(key, key if "/" in key else f"train/{key}")] = value
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")


class Preemption(TrainerCallback):
    """Checkpoint and stop at the next step boundary after SIGTERM or SIGUSR1."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self):
        self.requested: int | None = None
        self.triggered = False
        self._previous = {}

    def _handler(self, signum, frame):
        self.requested = signum
        log.warning("received %s: will save a checkpoint at the next step boundary and exit",
                    signal.Signals(signum).name)

    def install(self) -> None:
        for sig in self.SIGNALS:
            self._previous[sig] = signal.signal(sig, self._handler)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _agreed(self, args) -> bool:
        flag = self.requested is not None
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            t = torch.tensor([1.0 if flag else 0.0], device=args.device)
            torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
            flag = bool(t.item() > 0)
        return flag

    def on_step_end(self, args, state, control, **kwargs):
        if self._agreed(args):
            self.triggered = True
            control.should_save = True
            control.should_training_stop = True
        return control


def attach_eval_hook(trainer, recipe: Recipe, processor):
    """Attach the mid-training SpatialTree-Bench callback (SFT and GRPO); it reads ``recipe.eval`` to decide
    when to run, scores gpteval with ``recipe.reward.judge``, and is None when ``eval.bench`` is null."""
    from eval_hooks.callback import attach_bench_eval

    bench = attach_bench_eval(trainer, recipe.eval, recipe.data, processor=processor,
                              report_to=list(recipe.train.report_to), model_name=recipe.model.name_or_path,
                              judge=recipe.reward.judge)
    if bench is not None:  # one line after the first step when the evaluations will take most of the run
        from train.console_units import install as print_scores_in_percent
        from train.eval_share import EvalShare

        trainer.add_callback(EvalShare(bench, recipe.eval))
        print_scores_in_percent(trainer)  # the console shows bench/* x100; the logged values stay fractions
    return bench
