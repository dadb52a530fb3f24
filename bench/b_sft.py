"""SFT step: real (non-padding) tokens per second of our SFT trainer against TRL's SFTTrainer, same tiny
Qwen2.5-VL, same corpus (bench/workload.py), same batch size, learning rate and frozen vision tower.

Ours is built by the function ``train.sft.run`` trains with (``train.sft.build_trainer``: recipe ->
TrainingArguments, model + freeze, data_mix's ``build_mix`` over the corpus, SampleEncoder, BatchStream,
``train.sft_trainer.SFTTrainer``), without checkpoints or metric sinks. TRL's side is what its documentation shows for a VLM: a
``datasets.Dataset`` of ``messages`` + ``images`` (decoded by the Image feature), ``SFTTrainer`` with
``assistant_only_loss=True`` and its default VLM collator; the vision tower is frozen by hand (TRL has no
flag for it) so both train the same parameters.

A measurement is one ``train()`` of ``warm + steps`` optimizer steps on a fresh trainer; only the last
``steps`` count: the time between consecutive step ends (data loading, collation, forward, backward,
optimizer), in CPU seconds of the (single-threaded) benchmark process, and the real tokens of those steps'
batches.
"""

from __future__ import annotations

from bench.harness import Context, Figure, compare, cpu_clock, pair_figure

BATCH = 4
LR = 1e-4


class StepClock:
    """Wraps a trainer's ``training_step`` to count real tokens and times the steps after ``warm``."""

    def __init__(self, trainer, warm: int, count_tokens):
        from transformers import TrainerCallback

        self.warm, self.tokens, self.ends = warm, [], []
        clock = self
        orig = trainer.training_step

        def training_step(model, inputs, num_items_in_batch=None):
            clock.tokens.append(count_tokens(inputs))
            return orig(model, inputs, num_items_in_batch)

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
        "optim.warmup_ratio=0", "optim.scheduler=constant", f"train.output_dir={out_dir}", "eval.bench=null"])


def ours_trainer(corpus, out_dir, max_steps: int, packing: bool):
    import torch

    from train.run import RunContext
    from train.sft import build_trainer

    recipe = our_recipe(corpus, out_dir, max_steps, packing)
    ctx = RunContext(rank=0, world=1, device="cpu", dtype=torch.float32, run_dir=out_dir, report_to=[],
                     resume_from=None)
    trainer, _, _ = build_trainer(recipe, ctx, disable_tqdm=True, log_level="error", logging_first_step=False)
    return trainer


def hf_dataset(corpus):
    from datasets import Dataset, Image, Sequence

    return Dataset.from_list(corpus.hf_rows()).cast_column("images", Sequence(Image()))


def trl_trainer(dataset, out_dir, max_steps: int):
    from trl import SFTConfig, SFTTrainer

    from train.config import ModelConfig
    from train.model_loading import load_model, load_processor
    from train.module_groups import apply_freeze

    cfg = ModelConfig()
    model = load_model(cfg, "cpu")
    apply_freeze(model, cfg.freeze)  # TRL has no freeze flag: freeze by hand, same parameters as ours
    args = SFTConfig(output_dir=str(out_dir), max_steps=max_steps, per_device_train_batch_size=BATCH, learning_rate=LR,
                     lr_scheduler_type="constant", warmup_steps=0, max_length=4096, assistant_only_loss=True,
                     use_cpu=True, report_to="none", save_strategy="no", logging_steps=1000, disable_tqdm=True,
                     dataloader_num_workers=0, seed=0, max_grad_norm=1.0)
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=load_processor(cfg))


def run(ctx: Context) -> list[Figure]:
    from bench import workload

    corpus = workload.build(ctx.workdir / "corpus", ctx.pick(80, 300))
    dataset = hf_dataset(corpus)
    warm, steps = 1, ctx.pick(3, 6)
    total = warm + steps
    out = ctx.workdir / "runs"

    def measure(make, count) -> float:
        trainer = make()
        clock = StepClock(trainer, warm, count)
        trainer.train()
        return clock.tokens_per_s()

    def ours_tokens(inputs) -> int:
        return int(inputs["_stats"]["real_tokens"])

    def trl_tokens(inputs) -> int:
        return int(inputs["attention_mask"].sum())

    def ours_padded() -> float:
        return measure(lambda: ours_trainer(corpus, out / "ours", total, packing=False), ours_tokens)

    def ours_packed() -> float:
        return measure(lambda: ours_trainer(corpus, out / "ours_packed", total, packing=True), ours_tokens)

    def trl() -> float:
        return measure(lambda: trl_trainer(dataset, out / "trl", total), trl_tokens)

    what = (f"real tokens per CPU second of SFT steps (batch {BATCH}, {steps} timed steps after {warm} warm-up, "
            f"per fresh trainer; data, collation, forward, backward, optimizer), tiny Qwen2.5-VL, vision frozen, one "
            f"CPU thread.")
    base = "TRL 1.16 SFTTrainer (datasets.Dataset + its default VLM collator, assistant_only_loss)"
    figures = []
    a, b = compare(ours_padded, trl, ctx.repeats, ctx.warmup, ctx.log)
    figures.append(pair_figure("tokens_per_s", what + " Ours with padding, like TRL.", "tokens/s", a, b, base))
    a, b = compare(ours_packed, trl, ctx.repeats, 0, ctx.log)
    figures.append(pair_figure("tokens_per_s_packed", what + " Ours with train.packing=true (TRL refuses packing "
                               "for VLMs).", "tokens/s", a, b, base))
    return figures
