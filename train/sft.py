"""Supervised fine-tuning: ``run(recipe, flags)`` behind ``launch/sft.py``.

    torchrun --nproc_per_node N launch/sft.py recipe=dist_size_corr [key=value ...]
    python launch/sft.py recipe=quickstart_sft          # one process

What a run leaves in ``train.output_dir``: recipe.yaml + run_info.json, metrics.jsonl, tensorboard/,
checkpoint-N/ (complete ones carry a COMPLETE marker), and at the end the final model as a plain
Hugging Face directory (weights, config, processor, chat template) at the top of the run directory,
plus ``train_summary.json``. A pre-empted run (SIGTERM/SIGUSR1) leaves a checkpoint and exits 0.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

log = logging.getLogger("train.sft")

SCHEDULERS = {"cosine": "cosine", "linear": "linear", "constant": "constant_with_warmup"}


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


def build_source(recipe, rank: int, world_size: int, tokenizer):
    """This rank's share of the recipe's data mix (data_mix.mixer.build_mix)."""
    from data_mix.mixer import build_mix

    match = None
    if recipe.mix.budget.match_recipe:
        from train.recipe import load_recipe

        match = load_recipe(recipe.mix.budget.match_recipe).mix
    return build_mix(recipe.data, recipe.mix, rank=rank, world_size=world_size, tokenizer=tokenizer,
                     match_mix=match)


def steps_for(source, recipe, world_size: int) -> int:
    """``train.max_steps``, or with -1 the optimizer steps that consume this rank's share of the mix once."""
    if recipe.train.max_steps > 0:
        return recipe.train.max_steps
    per_step = recipe.train.per_device_batch_size * recipe.train.grad_accum
    n = getattr(source, "samples_this_rank", None)
    if n is None:
        n = source.total_samples // world_size
    steps = n // per_step
    if steps < 1:
        raise ValueError(f"the mix has {n} samples on this rank, fewer than one optimizer step ({per_step})")
    return steps


def training_arguments(recipe, run_dir: Path, device: str, dtype, max_steps: int, report_to: list[str]):
    import torch
    from transformers import TrainingArguments

    t, o = recipe.train, recipe.optim
    _, world = dist_env()
    return TrainingArguments(
        output_dir=str(run_dir), max_steps=max_steps, per_device_train_batch_size=t.per_device_batch_size,
        gradient_accumulation_steps=t.grad_accum, learning_rate=o.lr, weight_decay=o.weight_decay,
        adam_beta1=o.betas[0], adam_beta2=o.betas[1], max_grad_norm=o.max_grad_norm,
        lr_scheduler_type=SCHEDULERS[o.scheduler], warmup_steps=o.warmup_ratio,
        logging_steps=t.logging_steps, logging_first_step=True, report_to=report_to or "none",
        save_strategy="steps" if t.save_steps > 0 else "no", save_steps=t.save_steps if t.save_steps > 0 else 500,
        save_total_limit=None, seed=t.seed, data_seed=t.seed, use_cpu=device == "cpu",
        bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16,
        deepspeed=deepspeed_config(t.deepspeed), ddp_backend="gloo" if (device == "cpu" and world > 1) else None,
        ddp_find_unused_parameters=True, ddp_timeout=t.collective_timeout_s, remove_unused_columns=False,
        ignore_data_skip=True,
        dataloader_num_workers=0, gradient_checkpointing=False, save_only_model=False,
        disable_tqdm=False, log_level="info", log_level_replica="warning",
    )


def prepare_model(recipe, device: str):
    """Model (LoRA-wrapped when asked), processor, and the per-group parameter counts after freezing."""
    from train.modeling import load_model, load_processor
    from train.modules import apply_freeze

    model = load_model(recipe.model, "cpu" if recipe.train.deepspeed else device)
    processor = load_processor(recipe.model)
    if recipe.model.gradient_checkpointing:
        model.config.use_cache = False
    if recipe.model.lora.enabled:
        from train.lora import wrap_lora

        model = wrap_lora(model, recipe.model.lora, recipe.model.freeze)
    counts = apply_freeze(model, recipe.model.freeze)
    return model, processor, counts


def user_errors() -> tuple[type[BaseException], ...]:
    """Errors that name what the user can fix (a data file and row, a full disk, a model path, a packing
    length): the command line prints them as one line and exits 1. Anything else is a bug: a traceback."""
    from data_mix.badsample import BadSample, TooManyBadSamples
    from data_mix.plan import PlanError
    from data_mix.registry import RegistryError
    from data_mix.rowfiles import DataFileError
    from train.checkpoint import CheckpointError
    from train.data import BadDataError
    from train.modeling import ModelLoadError
    from train.modules import UnsupportedArchitecture
    from train.packing import PackingError

    return (BadSample, TooManyBadSamples, PlanError, RegistryError, DataFileError, CheckpointError, BadDataError,
            ModelLoadError, UnsupportedArchitecture, PackingError)


def run_cli(recipe, flags: list[str], prog: str = "launch/sft.py") -> int:
    """:func:`run` for the command line: a user error (:func:`user_errors`) is one line on stderr, exit 1."""
    from train.cli import report_user_error

    try:
        return run(recipe, flags)
    except user_errors() as exc:
        return report_user_error(prog, exc)


def run(recipe, flags: list[str], source=None) -> int:
    """Train ``recipe``; ``source`` (an iterable of Samples) replaces the recipe's mix when given (tests)."""
    import torch
    import transformers

    from train import checkpoint as ckpt
    from train.collate import SampleEncoder
    from train.data import BatchStream
    from train.modeling import pick_attn_implementation, pick_device, pick_dtype
    from train.modules import format_counts
    from train.packing import rope_index_fn
    from train.run_info import write_run_info
    from train.telemetry import JsonlMetrics, Preemption, attach_eval_hook, hf_report_to
    from train.trainer import SFTTrainer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if recipe.train.num_threads is not None:
        torch.set_num_threads(recipe.train.num_threads)
    rank, world = dist_env()
    run_dir = Path(recipe.train.output_dir)
    device = pick_device(recipe.train.device)
    dtype = pick_dtype(recipe.model.dtype, device)
    transformers.set_seed(recipe.train.seed)
    if rank == 0:
        write_run_info(recipe, run_dir, "sft")

    resume_from = ckpt.resolve_resume(recipe.train.resume, run_dir)
    report_to = hf_report_to(list(recipe.train.report_to), run_dir)
    if world > 1:
        init_process_group(device, recipe.train.collective_timeout_s, use_deepspeed=bool(recipe.train.deepspeed))
    # TrainingArguments first: with ZeRO-3 it makes from_pretrained partition the weights as they load.
    args = training_arguments(recipe, run_dir, device, dtype, max(recipe.train.max_steps, 1), report_to)
    model, processor, counts = prepare_model(recipe, device)
    if rank == 0:
        print("trainable parameters per group:\n" + format_counts(counts), flush=True)

    if source is None:
        source = build_source(recipe, rank, world, processor.tokenizer)
    args.max_steps = steps_for(source, recipe, world)
    attn = pick_attn_implementation(recipe.model.attn_implementation, device)
    encoder = SampleEncoder(processor, recipe.data)
    stream = BatchStream(source, encoder, recipe.train.per_device_batch_size, recipe.data,
                         packing=recipe.train.packing, packing_max_length=recipe.train.packing_max_length,
                         rope_fn=rope_index_fn(model) if recipe.train.packing else None, attn_implementation=attn)

    preemption = Preemption()
    callbacks = [preemption]
    if "jsonl" in recipe.train.report_to:
        callbacks.append(JsonlMetrics(run_dir / "metrics.jsonl"))
    trainer = SFTTrainer(model=model, args=args, train_dataset=stream, processing_class=processor,
                         callbacks=callbacks, optim_cfg=recipe.optim, run_dir=run_dir,
                         save_total_limit=recipe.train.save_total_limit)
    attach_eval_hook(trainer, recipe, processor)
    if resume_from is not None:
        log.info("resuming from %s", resume_from)
        trainer.load_data_state(resume_from)
    return train_to_end(trainer, recipe, run_dir, resume_from, preemption, lambda: {
        "samples_seen": stream.seen, "samples_skipped": stream.skipped,
        "skipped_by_reason": skipped_by_reason(source, stream)})


def train_to_end(trainer, recipe, run_dir: Path, resume_from, preemption, summary, before_save=None) -> int:
    """The end of every training launcher (SFT, GRPO): train with pre-emption armed (a pre-empted run has saved
    a checkpoint and exits 0), save the final model, then write ``train_summary.json`` from ``summary()``
    (the launcher's own fields) between the common ones. ``before_save`` runs just before the final save."""
    from train import checkpoint as ckpt

    preemption.install()
    start = time.time()
    try:
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    finally:
        preemption.uninstall()
    if preemption.triggered:
        log.warning("pre-empted at step %d: checkpoint saved in %s; rerun with train.resume=auto",
                    trainer.state.global_step, run_dir)
        return 0
    if before_save is not None:
        before_save()
    save_final(trainer, recipe, run_dir)
    if trainer.args.should_save:
        ckpt.write_json_atomic(run_dir / "train_summary.json", {
            "steps": trainer.state.global_step, "seconds": round(time.time() - start, 1), **summary(),
            "resumed_from": str(resume_from) if resume_from else None, "final_model": str(run_dir)})
    return 0


def skipped_by_reason(source, stream) -> dict[str, int]:
    """Skipped samples per reason code over the whole data path: the mixer's (read, media and length checks,
    this rank) plus the encoder's (decoding, processor)."""
    from collections import Counter

    counts = Counter(getattr(getattr(source, "skips", None), "counts", None) or {})
    counts.update(stream.skip_counts)
    return dict(sorted(counts.items()))



def save_final(trainer, recipe, run_dir: Path) -> None:
    """The final model as a plain HF directory in ``run_dir`` (ZeRO-3 weights gathered; LoRA merged on request)."""
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
        (run_dir / "lora.json").write_text(json.dumps({"adapter": str(adapter_dir), "merged": lora.merge_on_save}))
