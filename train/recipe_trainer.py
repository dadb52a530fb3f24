"""What the SFT and GRPO trainers add to ``transformers.Trainer`` alike (train/sft_trainer.py and TRL's
GRPOTrainer in train/grpo/trl_backend.py): our optimizer groups and atomic checkpoints that carry the data
position, and the same vision calls on every DeepSpeed rank.

The Trainer keeps what it does well: DeepSpeed ZeRO-2/3 integration, gradient accumulation,
clipping, schedulers, RNG state, gathering ZeRO-3 weights into a plain HF directory.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import torch

from eval_hooks.io import atomic_write_json
from train import checkpoint as ckpt
from train.module_groups import build_optimizer
from train.uniform_vision import install_uniform_vision

log = logging.getLogger(__name__)

DATA_STATE = "data_state_rank{rank}.json"


class AtomicCheckpoints:
    """Mixin for ``transformers.Trainer`` subclasses (SFT and GRPO): checkpoints are staged, fsynced,
    renamed and marked COMPLETE (train/checkpoint.py), with this project's retention. ``run_dir``, ``keep``
    (save_total_limit) and ``_staging = False`` are set by :class:`RecipeTrainer`'s ``__init__``."""

    def _get_output_dir(self, trial) -> str:
        if self._staging:
            return str(ckpt.staging_dir(self.run_dir))
        return super()._get_output_dir(trial)

    def _barrier(self) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()

    def _save_checkpoint(self, model, trial) -> None:
        step = self.state.global_step
        stage_root = ckpt.staging_dir(self.run_dir)
        staged = stage_root / f"checkpoint-{step}"
        if self.args.should_save and staged.exists():
            shutil.rmtree(staged)
        self._barrier()
        error: BaseException | None = None
        self._staging = True
        try:
            super()._save_checkpoint(model, trial)
            stream = self.train_dataset
            if hasattr(stream, "state_dict"):
                staged.mkdir(parents=True, exist_ok=True)
                atomic_write_json(staged / DATA_STATE.format(rank=self.args.process_index),
                                       stream.state_dict())
        except Exception as exc:  # noqa: BLE001 - re-raised below, after every rank agreed
            error = exc
        finally:
            self._staging = False
        failed = self._any_rank(error is not None)
        if failed:
            exc = error or RuntimeError("another rank failed while saving")
            disk_full = ckpt.is_disk_full(exc, stage_root)  # measured before the partial save is removed
            self._barrier()
            if self.args.should_save:
                shutil.rmtree(staged, ignore_errors=True)
            if disk_full:
                raise ckpt.CheckpointError(ckpt.disk_full_message(self.run_dir, step, exc)) from exc
            raise ckpt.CheckpointError(f"saving checkpoint-{step} failed: {exc}; the previous checkpoint "
                                       f"({ckpt.latest_complete(self.run_dir)}) is kept") from exc
        self._barrier()
        if self.args.should_save:
            try:
                final = ckpt.publish(staged, self.run_dir, {"world_size": self.args.world_size})
            except OSError as exc:
                disk_full = ckpt.is_disk_full(exc, self.run_dir)
                shutil.rmtree(staged, ignore_errors=True)
                if disk_full:
                    raise ckpt.CheckpointError(ckpt.disk_full_message(self.run_dir, step, exc)) from exc
                raise
            if stage_root.is_dir() and not any(stage_root.iterdir()):
                stage_root.rmdir()
            removed = ckpt.enforce_retention(self.run_dir, self.keep, self.earlier_checkpoints)
            log.info("saved %s%s", final, f" (removed {', '.join(p.name for p in removed)})" if removed else "")
        self._barrier()

    def _any_rank(self, flag: bool) -> bool:
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.args.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)


class RecipeTrainer(AtomicCheckpoints):
    """Mixin for the SFT and GRPO trainers: the recipe's per-group optimizer (train/module_groups.py), atomic
    checkpoints with this project's retention, and under DeepSpeed with several processes the same vision calls
    on every rank (train/uniform_vision.py).

    ``optim_cfg`` is the recipe's OptimConfig, ``run_dir`` the run directory (= ``args.output_dir``),
    ``save_total_limit`` our retention (the Trainer's own rotation is off: it is not atomic).
    """

    def __init__(self, *args, optim_cfg, run_dir: str | Path, save_total_limit: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.optim_cfg = optim_cfg
        self.run_dir = Path(run_dir)
        self.keep = save_total_limit
        # Checkpoints already in run_dir were written by an earlier run (the one resumed): retention keeps them.
        self.earlier_checkpoints = frozenset(p.name for p in ckpt.complete_checkpoints(self.run_dir))
        self._staging = False
        if self.args.deepspeed and self.args.world_size > 1:  # ranks see different media: see train/uniform_vision.py
            install_uniform_vision(self.model)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            # Fused AdamW as a plain Trainer's default (adamw_torch_fused); DeepSpeed wraps the optimizer itself.
            self.optimizer = build_optimizer(self.model, self.optim_cfg, fused=not self.args.deepspeed)
        return self.optimizer
