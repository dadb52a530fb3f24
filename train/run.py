"""The run skeleton shared by SFT (train/sft.py) and GRPO on TRL (train/grpo/trl_backend.py).

One place for what every training run does the same way: process rank and world size, device and dtype,
the run directory, metric sinks and resume point (:func:`start_run` -> :class:`RunContext`); the
TrainingArguments keys both trainers set alike (:func:`training_kwargs`); the model with LoRA, freezing and fp32
trainable weights (:func:`prepare_model`); pre-emption and metrics callbacks (:func:`run_callbacks`); the end of a run
(:func:`train_to_end`, :func:`save_final`); and the one list of errors the user can fix
(:func:`user_errors`, printed as one line by :func:`report_user_errors`).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

    from train.config import Recipe

log = logging.getLogger("train.run")

SCHEDULERS = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}
"""optim.scheduler -> the Trainer's ``lr_scheduler_type``."""


def deepspeed_config(choice: str | None) -> str | None:
    """``zero2`` / ``zero3`` -> the shipped JSON under recipes/deepspeed/; a path as it is; None."""
    if choice is None:
        return None
    from train.recipe import recipes_dir

    if choice in ("zero2", "zero3"):
        return str(recipes_dir() / "deepspeed" / f"{choice}.json")
    if not Path(choice).is_file():
        raise FileNotFoundError(f"train.deepspeed={choice!r}: not zero2, zero3, or an existing JSON file")
    return choice


def dist_env() -> tuple[int, int]:
    """(rank, world size) of this process, from torchrun's environment (0, 1 without it)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def init_process_group(device: str, timeout_s: int, use_deepspeed: bool = True) -> None:
    """The process group before the model loads, with the recipe's collective timeout.

    accelerate skips DeepSpeed's process-group setup with ``use_cpu``, and ZeRO-3's partitioned loading
    then sees a world size of 1; on CPU it also ignores ``ddp_timeout``. So torch's env:// init comes first
    (accelerate and DeepSpeed's comm layer adopt the existing group). ``timeout_s``: how long a collective
    waits for the other ranks before failing (a dead node must end the job, not hang it).
    """
    from datetime import timedelta

    import torch
    import torch.distributed as dist

    backend = "gloo" if device == "cpu" else "nccl"
    timeout = timedelta(seconds=timeout_s)
    if device == "cuda":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, timeout=timeout)
    if use_deepspeed:
        import deepspeed

        deepspeed.init_distributed(dist_backend=backend, timeout=timeout)


@dataclass
class RunContext:
    """Where and how this process trains."""

    rank: int
    world: int
    device: str
    """``cpu`` or ``cuda`` (train.device resolved)."""
    dtype: torch.dtype
    """Weights and autocast dtype (model.dtype resolved for the device)."""
    run_dir: Path
    """``train.output_dir``."""
    report_to: list[str]
    """The Trainer's integrations for train.report_to (jsonl is ours: :func:`run_callbacks`)."""
    resume_from: Path | None
    """The checkpoint this run resumes from (train/rerun.py decides), or None."""
    rerun: Any = None
    """The :class:`train.rerun.RerunPlan` carried out by :func:`train.rerun.open_run_dir` on rank 0."""


def start_run(recipe: Recipe) -> RunContext:
    """Logging, torch threads and the seed set; rank, device, dtype, sinks and resume point resolved."""
    import torch
    import transformers

    from train import rerun
    from train.callbacks import hf_report_to
    from train.model_loading import pick_device, pick_dtype

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if recipe.train.num_threads is not None:
        torch.set_num_threads(recipe.train.num_threads)
    rank, world = dist_env()
    run_dir = Path(recipe.train.output_dir)
    device = pick_device(recipe.train.device)
    dtype = pick_dtype(recipe.model.dtype, device)
    transformers.set_seed(recipe.train.seed)
    try:
        plan = rerun.plan(recipe)
    except rerun.RerunError as exc:  # raised by open_run_dir on every rank, so that a --dry-run still works
        plan = rerun.RerunPlan(run_dir=run_dir, refused=exc)
    return RunContext(rank=rank, world=world, device=device, dtype=dtype, run_dir=run_dir,
                      report_to=hf_report_to(list(recipe.train.report_to), run_dir),
                      resume_from=plan.resume_from, rerun=plan)


def training_kwargs(recipe: Recipe, ctx: RunContext, max_steps: int) -> dict[str, Any]:
    """The TrainingArguments keys SFT and GRPO (TRL's GRPOConfig) set alike, from the recipe."""
    import torch

    t, o = recipe.train, recipe.optim
    return dict(
        output_dir=str(ctx.run_dir), max_steps=max_steps, per_device_train_batch_size=t.per_device_batch_size,
        # learning_rate feeds the scheduler; the optimizer itself (betas, eps, decay, per-group rates) is built in
        # one place from the recipe, train/module_groups.build_optimizer (RecipeTrainer.create_optimizer)
        gradient_accumulation_steps=t.grad_accum, learning_rate=o.lr, max_grad_norm=o.max_grad_norm,
        lr_scheduler_type=SCHEDULERS[o.scheduler],
        # A ratio, not a step count: transformers (>= 5.0) reads a float warmup_steps below 1 as the share of
        # the total steps (ceil(max_steps * ratio)); the recipe keeps warmup_ratio in [0, 1).
        warmup_steps=o.warmup_ratio,
        logging_steps=t.logging_steps, logging_first_step=True, report_to=ctx.report_to or "none",
        save_strategy="steps" if t.save_steps > 0 else "no", save_steps=t.save_steps if t.save_steps > 0 else 500,
        save_total_limit=None,  # retention is ours (RecipeTrainer): the Trainer's own rotation is not atomic
        seed=t.seed, data_seed=t.seed, use_cpu=ctx.device == "cpu",
        bf16=ctx.dtype == torch.bfloat16, fp16=ctx.dtype == torch.float16,
        deepspeed=deepspeed_config(t.deepspeed), ddp_backend="gloo" if (ctx.device == "cpu" and ctx.world > 1) else None,
        ddp_find_unused_parameters=True, ddp_timeout=t.collective_timeout_s, remove_unused_columns=False,
        # SFT's trainer builds its own DataLoader without workers (train/sft_trainer.py): this reaches GRPO only.
        dataloader_num_workers=recipe.data.num_workers,
        # Switched on at load (train/model_loading.py, non-reentrant); the Trainer then enables it again with
        # transformers' default kwargs, which are the same. Passed in full because TRL's GRPOConfig defaults to True.
        gradient_checkpointing=recipe.model.gradient_checkpointing,
        disable_tqdm=False, log_level="info", log_level_replica="warning",
    )


def prepare_model(recipe: Recipe, device: str, processor=None):
    """Model (LoRA-wrapped when asked), processor (``processor`` when the caller loaded it already), and the
    per-group parameter counts after freezing. Trainable parameters loaded in bf16/fp16 get fp32 master weights
    unless DeepSpeed runs (train/precision.py)."""
    from train.model_loading import disable_cache, load_model, load_processor
    from train.module_groups import apply_freeze
    from train.precision import apply_trainable_fp32

    # Attention and dtype are decided for the device the run computes on, also under DeepSpeed (which moves the
    # model itself, so it is placed on the CPU first): bf16 + flash-attention on a GPU machine that has it.
    model = load_model(recipe.model, device, place_on="cpu" if recipe.train.deepspeed else None)
    log.info("model: attention %s, weights %s (decided for %s)", model.loaded_attention.implementation,
             str(model.dtype).replace("torch.", ""), device)
    weights_dtype = model.dtype
    processor = processor if processor is not None else load_processor(recipe.model)
    disable_cache(model)  # every config (outer, text, vision): a training forward must not build a KV cache
    if recipe.model.lora.enabled:
        from train.lora import wrap_lora

        model = wrap_lora(model, recipe.model.lora, recipe.model.freeze)
    counts = apply_freeze(model, recipe.model.freeze)
    apply_trainable_fp32(model, recipe.model.trainable_fp32, weights_dtype, recipe.train.deepspeed)
    return model, processor, counts


def print_counts(ctx: RunContext, counts) -> None:
    """The trainable parameters per module group, printed once (rank 0)."""
    from train.module_groups import format_counts

    if ctx.rank == 0:
        print("trainable parameters per group:\n" + format_counts(counts), flush=True)


def run_callbacks(recipe: Recipe, ctx: RunContext, metrics_cls=None):
    """(pre-emption callback, the trainer's callbacks): pre-emption, plus ``metrics_cls`` writing
    RUN_DIR/metrics.jsonl when train.report_to has jsonl (default :class:`train.callbacks.JsonlMetrics`)."""
    from eval_hooks.layout import METRICS_JSONL
    from train.callbacks import JsonlMetrics, Preemption

    preemption = Preemption()
    callbacks = [preemption]
    if "jsonl" in recipe.train.report_to:
        callbacks.append((metrics_cls or JsonlMetrics)(ctx.run_dir / METRICS_JSONL))
    return preemption, callbacks


# ---------------------------------------------------------------------------- the end of a run

def train_to_end(trainer, recipe: Recipe, ctx: RunContext, preemption, summary: Callable[[], dict],
                 before_save: Callable[[], None] | None = None) -> int:
    """The end of every training launcher (SFT, GRPO): train with pre-emption armed (a pre-empted run has saved
    a checkpoint and exits 0), save the final model, then write ``train_summary.json`` from ``summary()``
    (the launcher's own fields) between the common ones. ``before_save`` runs just before the final save."""
    from eval_hooks.io import atomic_write_json
    from eval_hooks.layout import TRAIN_SUMMARY

    resume_from, run_dir = ctx.resume_from, ctx.run_dir
    preemption.install()
    start = time.time()
    quiet = _NoShareLine(preemption)  # transformers' "share your model" line is wrong after a pre-emption
    logging.getLogger("transformers.trainer").addFilter(quiet)
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    finally:
        preemption.uninstall()
        logging.getLogger("transformers.trainer").removeFilter(quiet)
    if preemption.triggered:
        log.warning("pre-empted at step %d: checkpoint saved in %s; rerun with train.resume=auto",
                    trainer.state.global_step, run_dir)
        return 0
    if before_save is not None:
        before_save()
    save_final(trainer, recipe, run_dir)
    if trainer.args.should_save:
        from train.model_card import write_model_card

        write_model_card(recipe, run_dir, "GRPO" if hasattr(trainer, "num_generations") else "SFT",
                         trainer.state.global_step)
        atomic_write_json(run_dir / TRAIN_SUMMARY, {
            "steps": trainer.state.global_step, "seconds": round(time.time() - start, 1), **summary(),
            "resumed_from": str(resume_from) if resume_from else None, "final_model": str(run_dir)})
        from train.report_page import write_report_at_end

        write_report_at_end(run_dir)
    return 0


class _NoShareLine(logging.Filter):
    """Drops transformers' end-of-training "Do not forget to share your model" line after a pre-emption."""

    def __init__(self, preemption):
        super().__init__()
        self.preemption = preemption

    def filter(self, record: logging.LogRecord) -> bool:
        return not (self.preemption.triggered and "share your model" in record.getMessage())


def save_final(trainer, recipe: Recipe, run_dir: Path) -> None:
    """The final model as a plain HF directory in ``run_dir`` (ZeRO-3 weights gathered; LoRA merged on request)."""
    from eval_hooks.io import atomic_write_json

    lora = recipe.model.lora
    if not lora.enabled:
        trainer.save_model(str(run_dir))  # weights (gathered under ZeRO-3) + processor + chat template
        return
    adapter_dir = run_dir / "adapter"
    trainer.save_model(str(adapter_dir))
    if lora.merge_on_save and trainer.args.should_save:
        _, world = dist_env()
        if world == 1 and not recipe.train.deepspeed:
            from train.lora import merge_adapter

            merge_adapter(recipe.model.name_or_path, adapter_dir, run_dir)
        else:  # a fresh process: loading a model on one rank inside a ZeRO job breaks its process group
            import subprocess
            import sys

            subprocess.run([sys.executable, "-m", "train.lora", "--base", recipe.model.name_or_path,
                            "--adapter", str(adapter_dir), "--out", str(run_dir)], check=True)
    if trainer.args.should_save:
        atomic_write_json(run_dir / "lora.json", {"adapter": str(adapter_dir), "merged": lora.merge_on_save})


# ---------------------------------------------------------------------------- errors the user can fix

def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that name what the user can fix (a data file and row, a full disk, a model path, a packing
    length, a prompt, verl's environment, a training row that is a bench record): the command line prints them as one line and exits 1. Anything else
    is a bug: a traceback."""
    from data_mix.badsample import BadSample, TooManyBadSamples
    from data_mix.decontam import ContaminationError
    from data_mix.plan import PlanError
    from data_mix.registry import RegistryError
    from data_mix.rowfiles import DataFileError
    from train.checkpoint import CheckpointError
    from train.data import BadDataError
    from train.grpo.dataset import GRPODataError
    from train.grpo.prompts import PromptError
    from train.grpo.verl_backend import VerlBackendError
    from train.model_loading import ModelLoadError
    from train.module_groups import UnsupportedArchitecture
    from train.packing import PackingError

    return (BadSample, TooManyBadSamples, PlanError, RegistryError, DataFileError, CheckpointError, BadDataError,
            GRPODataError, PromptError, VerlBackendError, ModelLoadError, UnsupportedArchitecture, PackingError,
            ContaminationError)


def report_user_errors(prog: str, run: Callable[[Recipe, list[str]], int], recipe: Recipe, flags: list[str]) -> int:
    """``run(recipe, flags)``; a user error (:func:`user_errors`) becomes one line on stderr and exit code 1."""
    from train.user_errors import report_user_error

    try:
        return run(recipe, flags)
    except user_errors() as exc:
        return report_user_error(prog, exc)
