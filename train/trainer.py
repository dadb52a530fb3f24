"""A light subclass of ``transformers.Trainer``: our optimizer groups, our data stream, atomic
checkpoints that carry the data position, throughput metrics and pre-emption.

The Trainer keeps what it does well: DeepSpeed ZeRO-2/3 integration, gradient accumulation,
clipping, schedulers, RNG state, gathering ZeRO-3 weights into a plain HF directory.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

import torch
from transformers import Trainer

from eval_hooks.io import atomic_write_json
from train import checkpoint as ckpt
from train.modules import build_optimizer
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
            removed = ckpt.enforce_retention(self.run_dir, self.keep)
            log.info("saved %s%s", final, f" (removed {', '.join(p.name for p in removed)})" if removed else "")
        self._barrier()

    def _any_rank(self, flag: bool) -> bool:
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return flag
        t = torch.tensor([1.0 if flag else 0.0], device=self.args.device)
        torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
        return bool(t.item() > 0)


class RecipeTrainer(AtomicCheckpoints):
    """Mixin for the SFT and GRPO trainers: the recipe's per-group optimizer (train/modules.py), atomic
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
        self._staging = False
        if self.args.deepspeed and self.args.world_size > 1:  # ranks see different media: see train/uniform_vision.py
            install_uniform_vision(self.model)

    def create_optimizer(self, model=None):
        if self.optimizer is None:
            self.optimizer = build_optimizer(self.model, self.optim_cfg)
        return self.optimizer


class SFTTrainer(RecipeTrainer, Trainer):
    """Trainer over a :class:`train.data.BatchStream`: throughput and non-padding metrics, learning rates per
    module group in the logs, the data position in every checkpoint."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._window = {"real_tokens": 0, "total_tokens": 0, "label_tokens": 0, "samples": 0, "steps": 0}
        self._window_start = time.perf_counter()
        self._group_lrs: dict[str, float] = {}

    # ------------------------------------------------------------------ data
    def get_train_dataloader(self):
        # No accelerate sharding: the mixer already shards by rank. No workers, no prefetch: the data
        # position saved with a checkpoint is exactly after the last batch trained on.
        return torch.utils.data.DataLoader(self.train_dataset, batch_size=None, num_workers=0)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        stats = inputs.pop("_stats", None)
        if self.optimizer is not None:  # the learning rates this step uses, per module group
            self._group_lrs = {g["name"]: g["lr"] for g in self.optimizer.param_groups
                               if "name" in g and not g["name"].endswith("_no_decay")}
        if stats is not None and model.training:
            for key in ("real_tokens", "total_tokens", "label_tokens", "samples"):
                self._window[key] += stats[key]
        return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                    num_items_in_batch=num_items_in_batch)

    # ------------------------------------------------------------------ logging
    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:
            w = self._window
            elapsed = max(time.perf_counter() - self._window_start, 1e-9)
            totals = torch.tensor([w["real_tokens"], w["total_tokens"], w["samples"]], dtype=torch.float64)
            if torch.distributed.is_available() and torch.distributed.is_initialized():
                totals = totals.to(self.args.device)
                torch.distributed.all_reduce(totals)
                totals = totals.cpu()
            real, total, samples = totals.tolist()
            logs["tokens_per_s"] = real / elapsed
            logs["samples_per_s"] = samples / elapsed
            logs["nonpad_fraction"] = real / max(total, 1.0)
            for name, lr in self._group_lrs.items():
                logs[f"lr_{name}"] = lr
            self._window = dict.fromkeys(w, 0)
            self._window_start = time.perf_counter()
        super().log(logs, start_time)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model=None) -> None:
        """Load the model weights of a checkpoint, with the checkpoint-key conversion of from_pretrained.

        transformers saves Qwen-VL weights under their legacy names (``model.layers.*``, ``visual.*``)
        but the Trainer's own resume loads them with ``load_state_dict(strict=False)`` against the
        module names (``model.language_model.layers.*``): nothing matches and the run silently continues
        from the initial weights. Loading through ``from_pretrained`` applies the mapping; strict after.
        """
        model = self.model if model is None else model
        from peft import PeftModel

        if isinstance(model, PeftModel):
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        dtype = next(model.parameters()).dtype
        loaded = type(model).from_pretrained(resume_from_checkpoint, dtype=dtype)
        missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
        if missing or unexpected:
            raise ckpt.CheckpointError(f"{resume_from_checkpoint}: weights do not match the model "
                                       f"(missing {missing[:5]}, unexpected {unexpected[:5]})")
        del loaded

    def load_data_state(self, checkpoint_dir: Path) -> None:
        """Put the data stream where it was when ``checkpoint_dir`` was saved (this rank's shard)."""
        path = Path(checkpoint_dir) / DATA_STATE.format(rank=self.args.process_index)
        if not path.is_file():
            raise ckpt.CheckpointError(f"{checkpoint_dir} has no data position for rank {self.args.process_index} "
                                       f"({path.name}); was it written with another number of processes?")
        self.train_dataset.load_state_dict(json.loads(path.read_text()))
