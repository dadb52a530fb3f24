"""The SFT trainer: ``transformers.Trainer`` with the recipe's optimizer groups and atomic checkpoints
(train/recipe_trainer.py), fed by our data stream (train/data.py), with throughput metrics and exact resume of
the data position.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from transformers import Trainer

from train import checkpoint as ckpt
from train.recipe_trainer import DATA_STATE, RecipeTrainer


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
        # The widest dtype the model holds: fp32 master weights next to a bf16 frozen tower (train/precision.py)
        # must come back as saved, not rounded through bf16; load_state_dict then casts to each parameter's own.
        dtype = max((p.dtype for p in model.parameters() if p.is_floating_point()), key=lambda d: d.itemsize)
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
