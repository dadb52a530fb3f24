"""SFT step: real (non-padding) tokens per second of our SFT trainer against TRL's SFTTrainer, doing the
same work by construction (docs/PERFORMANCE.md, "What each side runs").

Ours is built by the function ``train.sft.run`` trains with (``train.sft.build_trainer``: recipe ->
TrainingArguments, model + freeze, data_mix's ``build_mix`` over the corpus, SampleEncoder, BatchStream,
``train.sft_trainer.SFTTrainer``), without checkpoints or metric sinks. TRL's side is what its documentation
shows for a VLM: a ``datasets.Dataset`` of ``messages`` + ``images`` (decoded by the Image feature),
``SFTTrainer`` with ``assistant_only_loss=True`` and its default VLM collator; the vision tower is frozen by
hand (TRL has no flag for it).

Same on both sides, set explicitly (:func:`trl_config`, :func:`effective_settings` checks it before measuring):
fp32 weights and no autocast (SFTConfig's own default is bf16 autocast wherever the CPU supports bf16, whose
cost depends on the CPU's instruction set: the cause of the 6.8x swing in issue 25), gradient checkpointing off
(SFTConfig's default is on; our recipe's is off), fused AdamW (transformers' default; ours outside DeepSpeed),
no torch.compile, the same samples in the same order (TRL gets our mixer's first samples, read sequentially),
so every step trains on bit-identical batches. What differs is each side's own path: TRL's loss goes through
its fused LM head (log-probabilities in vocabulary chunks plus entropy and top-1 accuracy for its logs), ours
through the model's own loss (full logits, transformers' cross-entropy); both are the mean token NLL over the
assistant tokens of the batch, so the first step's losses must agree (the known-answer check).

A measurement is one ``train()`` of ``warm + steps`` optimizer steps on a fresh trainer; only the last
``steps`` count: the time between consecutive step ends (data loading, collation, forward, backward,
optimizer), in CPU seconds of the (single-threaded) benchmark process, and the real tokens of those steps'
batches. The warm step (first-call costs) is excluded on both sides.
"""

from __future__ import annotations

import itertools

from bench.harness import Context, Figure, compare_many, cpu_clock, known_answer, pair_figure

METHOD = 2
"""1: TRL with SFTConfig's defaults (bf16 autocast, gradient checkpointing) on its own random order; 2: the same
work on both sides (issue 25). The drift guard compares baselines only within one method."""
BATCH = 4
LR = 1e-4
LOSS_TOLERANCE = 1e-3
"""Relative tolerance of the first-step loss check (project choice: fp32 losses of the same batch through two
loss kernels agree to ~1e-6; a different batch or label mask moves the loss by far more than 1e-3)."""


class StepClock:
    """Wraps a trainer's ``training_step`` to count real tokens and keep each step's loss, and times the steps
    after ``warm``."""

    def __init__(self, trainer, warm: int, count_tokens):
        from transformers import TrainerCallback

        self.warm, self.tokens, self.ends, self.losses = warm, [], [], []
        clock = self
        orig = trainer.training_step

        def training_step(model, inputs, num_items_in_batch=None):
            clock.tokens.append(count_tokens(inputs))
            loss = orig(model, inputs, num_items_in_batch)
            clock.losses.append(float(loss))
            return loss

        trainer.training_step = training_step

        class _Ends(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                clock.ends.append(cpu_clock())

        trainer.add_callback(_Ends())

    def tokens_per_s(self) -> float:
        ends = self.ends[self.warm - 1:]  # the end of the last warm step starts the clock
        tokens = sum(self.tokens[self.warm:])
        return tokens / (ends[-1] - ends[0])


def our_recipe(corpus, out_dir, max_steps: int, packing: bool):
    from train.recipe import load_recipe

    return load_recipe(None, [
        f"data.root={corpus.root}", f"data.registry={corpus.registry}", "data.max_length=4096",
        "mix.unit=samples", "mix.groups.short.weight=7", "mix.groups.short.sources=[short_mcq]",
        "mix.groups.long.weight=3", "mix.groups.long.sources=[long_conv]", "mix.upsample=true",
        "mix.budget.unit=epochs", "mix.budget.value=50", "mix.budget.group=long",
        f"train.per_device_batch_size={BATCH}", f"train.max_steps={max_steps}", f"train.packing={str(packing).lower()}",
        "train.save_steps=0", "train.logging_steps=1000", "train.report_to=[]", f"optim.lr={LR}",
        "optim.warmup_ratio=0", "optim.scheduler=constant", "optim.weight_decay=0", "optim.max_grad_norm=1.0",
        "model.gradient_checkpointing=false", f"train.output_dir={out_dir}", "eval.bench=null"])


def ours_trainer(corpus, out_dir, max_steps: int, packing: bool):
    import torch

    from train.run import RunContext
    from train.sft import build_trainer

    recipe = our_recipe(corpus, out_dir, max_steps, packing)
    ctx = RunContext(rank=0, world=1, device="cpu", dtype=torch.float32, run_dir=out_dir, report_to=[],
                     resume_from=None)
    trainer, _, _ = build_trainer(recipe, ctx, disable_tqdm=True, log_level="error", logging_first_step=False)
    return trainer


def aligned_rows(corpus, n: int) -> list[dict]:
    """The first ``n`` samples our mixer gives (the same seeded plan ``ours_trainer`` trains on), as TRL rows
    in that order: with a sequential sampler TRL then trains on the same batches."""
    from train.model_loading import load_processor
    from train.sft import build_source

    recipe = our_recipe(corpus, corpus.root / "_order", 1, False)
    source = build_source(recipe, 0, 1, load_processor(recipe.model).tokenizer)
    ids = [s.id for s in itertools.islice(iter(source), n)]
    by_id = {r["id"]: r for rows in corpus.rows.values() for r in rows}
    from bench.workload import to_messages

    return [to_messages(by_id[i], corpus.root / "images") for i in ids]


def hf_dataset(rows: list[dict]):
    from datasets import Dataset, Image, Sequence

    return Dataset.from_list(rows).cast_column("images", Sequence(Image()))


def trl_config(out_dir, max_steps: int):
    """SFTConfig with every setting that changes the work spelled out (SFTConfig's default in the comment)."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(out_dir), max_steps=max_steps, per_device_train_batch_size=BATCH, learning_rate=LR,
        lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0, max_length=4096,
        assistant_only_loss=True, use_cpu=True, report_to="none", save_strategy="no", logging_steps=1000,
        disable_tqdm=True, dataloader_num_workers=0, seed=0,
        bf16=False,  # default: True wherever bf16 is supported (autocast on CPU too)
        fp16=False,
        gradient_checkpointing=False,  # default: True
        optim="adamw_torch_fused",  # the default, named
        torch_compile=False,  # the default, named
        train_sampling_strategy="sequential",  # default: random; the rows come in our mixer's order
    )


def trl_trainer(dataset, out_dir, max_steps: int):
    from trl import SFTTrainer

    from train.config import ModelConfig
    from train.model_loading import load_model, load_processor
    from train.module_groups import apply_freeze

    cfg = ModelConfig()
    model = load_model(cfg, "cpu")
    apply_freeze(model, cfg.freeze)  # TRL has no freeze flag: freeze by hand, same parameters as ours
    return SFTTrainer(model=model, args=trl_config(out_dir, max_steps), train_dataset=dataset,
                      processing_class=load_processor(cfg))


def effective_settings(trainer) -> dict:
    """What a built trainer will actually run: precision, autocast, checkpointing, optimizer, compile."""
    trainer.create_optimizer()
    opt = trainer.optimizer
    model = trainer.model
    return {
        "weights_dtype": str(next(p for p in model.parameters() if p.requires_grad).dtype).replace("torch.", ""),
        "autocast": trainer.accelerator.mixed_precision,
        "gradient_checkpointing": bool(getattr(model, "is_gradient_checkpointing", False)
                                       or trainer.args.gradient_checkpointing),
        "optimizer": type(opt).__name__ + (" (fused)" if opt.defaults.get("fused") else
                                           " (foreach)" if opt.defaults.get("foreach") else ""),
        "torch_compile": bool(trainer.args.torch_compile),
        "max_grad_norm": trainer.args.max_grad_norm,
        "lr": trainer.args.learning_rate,
    }


def same_work(ours: dict, trl: dict) -> None:
    """Refuse to measure when the two sides would not do the same work."""
    differ = {k: (ours[k], trl[k]) for k in ours if ours[k] != trl.get(k)}
    if differ:
        raise RuntimeError(f"the SFT sides would not do the same work: {differ} (ours, TRL)")


def run(ctx: Context) -> list[Figure]:
    from bench import workload

    corpus = workload.build(ctx.workdir / "corpus", ctx.pick(80, 300))
    warm, steps = 1, ctx.pick(3, 6)
    total = warm + steps
    dataset = hf_dataset(aligned_rows(corpus, total * BATCH))
    out = ctx.workdir / "runs"
    settings: dict = {}

    def measure(make, count, side: str) -> dict:
        trainer = make()
        if side not in settings:
            settings[side] = effective_settings(trainer)
        clock = StepClock(trainer, warm, count)
        trainer.train()
        return {"tokens_per_s": clock.tokens_per_s(), "first_loss": clock.losses[0]}

    def ours_tokens(inputs) -> int:
        return int(inputs["_stats"]["real_tokens"])

    def trl_tokens(inputs) -> int:
        return int(inputs["attention_mask"].sum())

    def ours_padded() -> dict:
        return measure(lambda: ours_trainer(corpus, out / "ours", total, packing=False), ours_tokens, "ours")

    def ours_packed() -> dict:
        return measure(lambda: ours_trainer(corpus, out / "ours_packed", total, packing=True), ours_tokens,
                       "ours_packed")

    def trl() -> dict:
        return measure(lambda: trl_trainer(dataset, out / "trl", total), trl_tokens, "trl")

    # Build each side once before anything is timed: the settings must agree.
    for side, make in (("ours", lambda: ours_trainer(corpus, out / "check", total, False)),
                       ("trl", lambda: trl_trainer(dataset, out / "check_trl", total))):
        settings[side] = effective_settings(make())
    same_work(settings["ours"], settings["trl"])
    ctx.log(f"same settings on both sides: {settings['ours']}")

    what = (f"real tokens per CPU second of SFT steps (batch {BATCH}, {steps} timed steps after {warm} warm-up, "
            f"per fresh trainer; data, collation, forward, backward, optimizer), tiny Qwen2.5-VL, vision frozen, one "
            f"CPU thread, fp32 without autocast, no gradient checkpointing, fused AdamW, the same batches in the "
            f"same order on both sides.")
    base = ("TRL 1.16 SFTTrainer (datasets.Dataset + its default VLM collator, assistant_only_loss; bf16=False and "
            "gradient_checkpointing=False set, sequential sampler over our mixer's order)")
    loss_paths = {"ours": "model forward with labels (full logits, transformers' cross-entropy)",
                  "trl": "TRL's fused LM head (chunked log-probs, plus entropy and top-1 accuracy for its logs)"}
    figures = []
    for name, ours_fn, note in (("tokens_per_s", ours_padded, " Ours with padding, like TRL."),
                                ("tokens_per_s_packed", ours_packed,
                                 " Ours with train.packing=true (TRL refuses packing for VLMs).")):
        a, b = compare_many(ours_fn, trl, ctx.repeats, ctx.warmup if name == "tokens_per_s" else 0, ctx.log)
        check = known_answer("first_step_loss", "loss of the first step (same batch, same initial weights)",
                             a["first_loss"], b["first_loss"], rel_tol=LOSS_TOLERANCE)
        figures.append(pair_figure(
            name, what + note, "tokens/s", a["tokens_per_s"], b["tokens_per_s"], base, checks=[check],
            extra={"settings": {"ours": settings.get("ours_packed" if "packed" in name else "ours"),
                                "trl": settings["trl"]}, "loss_path": loss_paths}))
    return figures
