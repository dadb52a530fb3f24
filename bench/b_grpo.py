"""GRPO step: wall time per optimizer step of our GRPO trainer (``train.grpo.trl_backend.run_trl``, what
``launch/grpo.py`` runs) against a bare TRL ``GRPOTrainer`` given the same model, prompts, settings and
scoring.

Same on both sides: the tiny Qwen2.5-VL with the vision tower frozen (``prepare_model``), the checked prompt
set (``load_prompts`` -> ``to_hf_dataset``: 64 SpatialTree-Bench-format prompts over L1-L4, bench/workload.py),
TRL's GRPOConfig built from the recipe (``grpo_arguments``), HF generate with the same suppressed tokens,
seed. What only ours has, and what the figure prices: the rewards package's routing by metric and level and
the auto-think shaping (accuracy, format, length and reasoning components), per-level telemetry, the
project's trainer subclass (optimizer groups, atomic checkpoint mixin), the metrics.jsonl and pre-emption
callbacks. The baseline scores each completion with the same metric (``rewards.score`` on the completion
text, one reward function), as a TRL user would write it.

Ours is ``run_trl`` itself; the step clock is attached through its eval-hook attachment point (the hook is
off: ``eval.bench=null``). A measurement is ``warm + steps`` steps of a fresh run; the mean CPU time (of the
single-threaded benchmark process) between step ends of the last ``steps`` counts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from bench.harness import Context, Figure, compare, cpu_clock, pair_figure

if TYPE_CHECKING:
    from train.config import Recipe

GENERATIONS = 4
BATCH = 8  # completions per step = 2 prompts x 4


class StepEnds:
    """A TrainerCallback recording the time of every step end."""

    def __new__(cls):
        from transformers import TrainerCallback

        class _Ends(TrainerCallback):
            def __init__(self):
                self.ends = []

            def on_step_end(self, args, state, control, **kwargs):
                self.ends.append(cpu_clock())

            def mean_step_s(self, warm: int) -> float:
                ends = self.ends[warm - 1:]
                return (ends[-1] - ends[0]) / (len(ends) - 1)

        return _Ends()


def recipe_for(registry, root, out, max_steps: int):
    from train.recipe import load_recipe

    return load_recipe("auto_think", [
        "model.name_or_path=tiny-qwen2.5-vl", f"data.root={root}", f"data.registry={registry}",
        "mix.groups.rl.sources=[rl_bench]", "mix.budget.unit=epochs", "mix.budget.value=1", "mix.budget.group=rl",
        f"train.per_device_batch_size={BATCH}", "train.grad_accum=1", f"train.max_steps={max_steps}",
        "train.save_steps=0", "train.logging_steps=1", "train.report_to=[jsonl]", "train.num_threads=1",
        f"grpo.num_generations={GENERATIONS}", "grpo.max_completion_length=24", "grpo.max_prompt_length=512",
        "eval.bench=null", f"train.output_dir={out}"])


def plain_accuracy(prompts, completions, metricfunc, answer, metric_extra, **_):
    """The baseline's reward: the benchmark metric on the completion text, nothing else."""
    from rewards import score

    texts = [c[-1]["content"] if isinstance(c, list) else c for c in completions]
    return [score(m, t, a, e)["score"] for t, m, a, e in zip(texts, metricfunc, answer, metric_extra)]


def bare_trl(recipe: Recipe, out) -> object:
    import torch
    import transformers
    from trl import GRPOTrainer

    from train.grpo.dataset import load_prompts, to_hf_dataset
    from train.grpo.trl_backend import grpo_arguments, suppressed_tokens
    from train.model_loading import load_processor
    from train.run import RunContext, prepare_model

    transformers.set_seed(recipe.train.seed)
    processor = load_processor(recipe.model)
    processor.tokenizer.padding_side = "left"
    dataset = to_hf_dataset(load_prompts(recipe, processor), recipe.data)
    ctx = RunContext(rank=0, world=1, device="cpu", dtype=torch.float32, run_dir=Path(out), report_to=[],
                     resume_from=None)
    args = grpo_arguments(recipe, ctx, False, [1.0])  # as ours: same logging and bars
    model, _, _ = prepare_model(recipe, "cpu")
    args.generation_kwargs = {**(args.generation_kwargs or {}), "suppress_tokens": suppressed_tokens(processor, model)}
    return GRPOTrainer(model=model, reward_funcs=[plain_accuracy], args=args, train_dataset=dataset,
                       processing_class=processor)


def run(ctx: Context) -> list[Figure]:
    from bench import workload
    from bench.worker import Skip

    try:
        from train.grpo import trl_backend
    except ImportError as exc:
        raise Skip(f"the GRPO trainer is not importable here: {exc}") from exc
    root = ctx.workdir / "rl"
    registry = workload.build_rl(root, 64)
    warm, steps = 1, ctx.pick(3, 6)
    counter = {"n": 0}

    def out(kind: str):
        counter["n"] += 1
        return ctx.workdir / f"{kind}_{counter['n']}"

    def ours() -> float:
        clock = StepEnds()
        code = trl_backend.run_trl(recipe_for(registry, root, out("ours"), warm + steps), [], callbacks=(clock,))
        if code:
            raise RuntimeError(f"run_trl exited {code}")
        return clock.mean_step_s(warm)

    def baseline() -> float:
        recipe = recipe_for(registry, root, out("trl"), warm + steps)
        trainer = bare_trl(recipe, out("trl"))
        clock = StepEnds()
        trainer.add_callback(clock)
        trainer.train()
        return clock.mean_step_s(warm)

    a, b = compare(ours, baseline, ctx.repeats, ctx.warmup, ctx.log)
    return [pair_figure(
        "step_s", f"CPU seconds per GRPO optimizer step ({BATCH} completions = {BATCH // GENERATIONS} prompts x "
        f"{GENERATIONS}, up to 24 new tokens, HF generate), tiny Qwen2.5-VL, vision frozen, one CPU thread; mean "
        f"of {steps} steps after {warm} warm-up per fresh run.", "CPU s/step", a, b,
        "TRL 1.16 GRPOTrainer, same model/prompts/GRPOConfig, one plain reward (rewards.score on the completion)",
        better="lower", target="ratio <= 1.05 (routing, shaping, telemetry under 5%)",
        check=lambda _o, _b, r: r["median"] <= 1.05,
        notes="On CPU the tiny model's generation dominates a step, so the ratio isolates fixed per-step costs; "
              "on GPUs with vLLM steps are shorter and the same absolute overhead weighs more (docs/PERFORMANCE.md).")]
