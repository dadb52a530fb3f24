"""Supervised fine-tuning: ``run(recipe, flags)`` behind ``launch/sft.py``.

    torchrun --nproc_per_node N launch/sft.py recipe=dist_size_corr [key=value ...]
    python launch/sft.py recipe=quickstart_sft          # one process
    python launch/sft.py recipe=quickstart_sft --dry-run   # every row checked, mix and steps planned; no model

Before the model loads, every training row the mix can draw is read and checked (data_mix/rowcheck.py: a bad one
stops the run in one line under data.on_bad_sample=error), and the evaluation plan is said (train/eval_share.py).

What a run leaves in ``train.output_dir``: recipe.yaml + run_info.json, metrics.jsonl, tensorboard/,
checkpoint-N/ (complete ones carry a COMPLETE marker), and at the end the final model as a plain
Hugging Face directory (weights, config, processor, chat template) at the top of the run directory,
plus ``train_summary.json``. A pre-empted run (SIGTERM/SIGUSR1) leaves a checkpoint and exits 0.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from train.run import RunContext

if TYPE_CHECKING:
    from train.config import Recipe
    from train.data import BatchStream
    from train.sft_trainer import SFTTrainer

log = logging.getLogger("train.sft")


def build_source(recipe: Recipe, rank: int, world_size: int, tokenizer, check_rows: bool = False):
    """This rank's share of the recipe's data mix (data_mix.mixer.build_mix); ``check_rows``: every row the mix can
    draw read, counted and checked first (data_mix/rowcheck.py), a bad one stopping here under
    ``data.on_bad_sample=error`` (file, row, reason) and counted in one line (rank 0) under ``skip``."""
    from data_mix.mixer import build_mix
    from data_mix.rowcheck import summary_line
    from train.recipe import matched_mix

    t = recipe.train  # with train.max_steps, mix.upsample may scale the mix up to the samples those steps take
    asked = t.max_steps * t.per_device_batch_size * t.grad_accum * world_size if t.max_steps > 0 else None
    mix = build_mix(recipe.data, recipe.mix, rank=rank, world_size=world_size, tokenizer=tokenizer,
                    match_mix=matched_mix(recipe), min_samples=asked, check_rows=check_rows, progress=rank == 0)
    if mix.row_check is not None and rank == 0:
        print(summary_line(mix.row_check, len(mix.plan.sources)), flush=True)
    return mix


def record_mix_plan(ctx: RunContext, source) -> None:
    """Rank 0 writes the mix's plan (the budget) into the run directory, for launch/report.py."""
    if ctx.rank != 0:
        return
    from data_mix.report import plan_record
    from eval_hooks import layout
    from eval_hooks.io import atomic_write_json

    atomic_write_json(ctx.run_dir / layout.MIX_PLAN, plan_record(source))


def steps_for(source, recipe: Recipe, world_size: int) -> int:
    """Optimizer steps of the run, said in one line at start: ``train.max_steps``, or with -1 the steps that
    consume this rank's share of the mix once. ``train.max_steps`` beyond the planned mix (``mix.upsample``
    off) is capped at the plan with a warning, since the run would stop there anyway."""
    per_step = recipe.train.per_device_batch_size * recipe.train.grad_accum
    n, asked = getattr(source, "samples_this_rank", None), recipe.train.max_steps
    if n is None:  # not a data_mix Mix (tests, user code): no plan to compare with
        if asked > 0:
            log.info("steps: %d (train.max_steps; the source is not a planned mix)", asked)
            return asked
        if not hasattr(source, "total_samples"):
            raise ValueError("train.max_steps=-1 needs a source of known size (a data_mix Mix); give train.max_steps")
        n = source.total_samples // world_size
    planned = n // per_step
    plan = getattr(getattr(source, "plan", None), "budget", None)
    mix = f"the mix plans {n} samples per rank = {planned} steps of {per_step}" + (f" (budget: {plan})" if plan else "")
    if planned < 1:
        raise ValueError(f"the mix has {n} samples on this rank, fewer than one optimizer step ({per_step})")
    if asked <= 0:
        log.info("steps: %d (train.max_steps=-1: one pass over the mix; %s)", planned, mix)
        return planned
    if asked <= planned:
        log.info("steps: %d (train.max_steps; %s)", asked, mix)
        return asked
    log.warning("steps: %d, not train.max_steps=%d: %s, and the run ends when they are used up; set "
                "mix.upsample=true to repeat the mix (new seeded order per epoch) up to %d steps",
                planned, asked, mix, asked)
    return planned


def training_arguments(recipe: Recipe, ctx: RunContext, max_steps: int, **overrides: Any):
    """The Trainer's arguments: the common keys (train/run.py) plus SFT's own; ``overrides`` win (bench)."""
    from transformers import TrainingArguments

    from train.run import training_kwargs

    # The trainer restores its data position itself (load_data_state): the Trainer must not skip batches.
    sft_only = dict(ignore_data_skip=True, save_only_model=False)
    return TrainingArguments(**{**training_kwargs(recipe, ctx, max_steps), **sft_only, **overrides})


def build_trainer(recipe: Recipe, ctx: RunContext, source=None, callbacks: list | None = None, processor=None,
                  max_steps: int | None = None, **args_overrides: Any) -> tuple[SFTTrainer, BatchStream, Any]:
    """(trainer, its batch stream, the sample source) for ``recipe``: the assembly ``run`` trains and the SFT
    benchmark (bench/b_sft.py) measures. ``source`` (an iterable of Samples) replaces the recipe's mix;
    ``processor`` and ``max_steps`` (:func:`steps_for`) are used when the caller has them already."""
    from train.collate import SampleEncoder
    from train.data import BatchStream
    from train.model_loading import attention_of
    from train.packing import rope_index_fn
    from train.run import prepare_model, print_counts
    from train.sft_trainer import SFTTrainer

    # TrainingArguments first: with ZeRO-3 it makes from_pretrained partition the weights as they load.
    args = training_arguments(recipe, ctx, max(recipe.train.max_steps, 1), **args_overrides)
    model, processor, counts = prepare_model(recipe, ctx.device, processor)
    print_counts(ctx, counts)

    if source is None:
        source = build_source(recipe, ctx.rank, ctx.world, processor)
        record_mix_plan(ctx, source)
    args.max_steps = steps_for(source, recipe, ctx.world) if max_steps is None else max_steps
    attn = attention_of(model)  # the collator prepares for the attention the model was loaded with
    encoder = SampleEncoder(processor, recipe.data)
    stream = BatchStream(source, encoder, recipe.train.per_device_batch_size, recipe.data,
                         packing=recipe.train.packing, packing_max_length=recipe.train.packing_max_length,
                         rope_fn=rope_index_fn(model) if recipe.train.packing else None, attn_implementation=attn)
    trainer = SFTTrainer(model=model, args=args, train_dataset=stream, processing_class=processor,
                         callbacks=callbacks, optim_cfg=recipe.optim, run_dir=ctx.run_dir,
                         save_total_limit=recipe.train.save_total_limit)
    return trainer, stream, source


def run_cli(recipe: Recipe, flags: list[str], prog: str = "launch/sft.py") -> int:
    """:func:`run` for the command line: a user error (train.run.user_errors) is one line on stderr, exit 1."""
    from train.run import report_user_errors

    return report_user_errors(prog, run, recipe, flags)


def run(recipe: Recipe, flags: list[str], source=None) -> int:
    """Train ``recipe``; ``source`` (an iterable of Samples) replaces the recipe's mix when given (tests)."""
    from data_mix.decontam import check as decontamination_check
    from data_mix.decontam import run_record
    from train.callbacks import attach_eval_hook
    from train.eval_share import say_evaluation_plan
    from train.model_loading import load_processor
    from train.rerun import open_run_dir
    from train.run import init_process_group, run_callbacks, start_run, train_to_end

    ctx = start_run(recipe)
    checked = processor = None
    if source is None:  # before anything heavy: a training row that is an evaluation record stops the run here
        checked = run_record(recipe.data, decontamination_check(recipe.data, recipe.mix, progress=ctx.rank == 0))
        # Every training row read and checked (and its tokens counted, once) before the model loads: a bad row
        # stops the run here in one line, or is counted under data.on_bad_sample=skip.
        processor = load_processor(recipe.model)
        source = build_source(recipe, ctx.rank, ctx.world, processor, check_rows=True)
    max_steps = steps_for(source, recipe, ctx.world)
    if ctx.rank == 0:
        say_evaluation_plan(recipe, max_steps, ctx.world)
    if "--dry-run" in flags:
        print(f"dry run: {max_steps} steps planned over {getattr(source, 'total_samples', '?')} samples; no model "
              "loaded, nothing written", flush=True)
        return 0
    open_run_dir(recipe, ctx.rerun, ctx.rank, "sft", checked)  # rank 0: the previous run resumed or moved aside
    if processor is not None:  # the recipe's own mix, built above
        record_mix_plan(ctx, source)
    if ctx.world > 1:
        init_process_group(ctx.device, recipe.train.collective_timeout_s, use_deepspeed=bool(recipe.train.deepspeed))
    preemption, callbacks = run_callbacks(recipe, ctx)
    trainer, stream, source = build_trainer(recipe, ctx, source, callbacks, processor, max_steps)
    attach_eval_hook(trainer, recipe, trainer.processing_class)
    if ctx.resume_from is not None:
        trainer.load_data_state(ctx.resume_from)
    return train_to_end(trainer, recipe, ctx, preemption, lambda: {
        "samples_seen": stream.seen, "samples_skipped": stream.skipped,
        "skipped_by_reason": skipped_by_reason(source, stream)})


def skipped_by_reason(source, stream: BatchStream) -> dict[str, int]:
    """Skipped samples per reason code over the whole data path: the mixer's (read, media and length checks,
    this rank) plus the encoder's (decoding, processor)."""
    counts = Counter(getattr(getattr(source, "skips", None), "counts", None) or {})
    counts.update(stream.skip_counts)
    return dict(sorted(counts.items()))
