"""GRPO with TRL's GRPOTrainer: ``run(recipe, flags)`` behind ``launch/grpo.py``.

    python launch/grpo.py recipe=auto_think model.name_or_path=runs/sft/dist_size_corr_motion
    torchrun --nproc_per_node 8 launch/grpo.py recipe=auto_think train.deepspeed=zero3
    python launch/grpo.py recipe=auto_think grpo.backend=verl --dry-run     # verl: parquet + config + command

The backend is chosen in train/grpo/backends.py (the shared checks, then :func:`run_trl` or the verl backend).

Shared with SFT (the run skeleton in train/run.py; train/module_groups.py, train/recipe_trainer.py, train/callbacks.py):
rank, device and dtype, the common TrainingArguments keys, model loading, the freeze table and per-group
learning rates, LoRA, DeepSpeed configs, atomic checkpoints, pre-emption, logging sinks, the final save (a plain
HF directory at the top of ``train.output_dir``, loadable by ``model.name_or_path=<output_dir>``) and the one
list of user errors. GRPO adds: the checked prompt set (train/grpo/dataset.py), the rewards package's reward
functions, per-level telemetry, the rollout engine choice.
"""

from __future__ import annotations

import importlib.util
import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from train.config import GRPOConfig, Recipe
    from train.run import RunContext

log = logging.getLogger("train.grpo")


def logger_name(key: str) -> str:
    """The name TensorBoard and wandb give a Trainer log key (``L1/reward`` -> ``train/L1/reward``)."""
    from train.callbacks import RENAME

    if key in RENAME:
        return RENAME[key]
    if key.startswith(("train/", "eval/", "test/", "bench/")):  # bench/...: the eval hook's names, kept as they are
        return key
    if key.startswith("eval_"):
        return "eval/" + key[len("eval_"):]
    if key.startswith("test_"):
        return "test/" + key[len("test_"):]
    return "train/" + key


def jsonl_callback(path: Path):
    """metrics.jsonl with the names TensorBoard and wandb show (``train/L1/reward``, ``train/reward`` ...)."""
    from train.callbacks import JsonlMetrics

    class GRPOJsonlMetrics(JsonlMetrics):
        writes_metrics_jsonl = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs:
                super().on_log(args, state, control, logs={logger_name(k): v for k, v in logs.items()}, **kwargs)

    return GRPOJsonlMetrics(path)


@lru_cache(maxsize=1)
def trainer_class():
    """TRL's GRPOTrainer with the project's optimizer groups and atomic checkpoints (as in SFT), prompts with and
    without images in one run, and the same vision calls on every DeepSpeed rank (train/grpo/media.py).
    Built on first use: the verl backend and --dry-run never import TRL."""
    from trl import GRPOTrainer

    from train.grpo.media import MixedMediaGRPO
    from train.recipe_trainer import RecipeTrainer

    class SpatialGRPOTrainer(RecipeTrainer, MixedMediaGRPO, GRPOTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.media_hooks = self.install_media_hooks()

    return SpatialGRPOTrainer


# ---------------------------------------------------------------------------- pieces

def reward_functions(recipe: Recipe, tokenizer=None, opened: str = ""):
    """(reward functions in TRL's calling convention, their weights) from the rewards package; ``tokenizer``
    (the processor's) counts lengths when ``reward.length_unit=tokens``; ``opened``: the think block the
    generation prompts leave open (``train.grpo.prompts.prompt_thinking``), read before every completion."""
    from rewards.grpo import make_reward_funcs, reward_weights

    return make_reward_funcs(recipe.reward, tokenizer=tokenizer, opened=opened), reward_weights(recipe.reward)


def pick_generation(grpo: GRPOConfig, device: str) -> tuple[bool, str]:
    """(use vLLM, why): vLLM when allowed (grpo.use_vllm), installed and on a GPU; HF generate otherwise."""
    if not grpo.use_vllm:
        return False, "HF generate (grpo.use_vllm=false)"
    if device != "cuda":
        return False, "HF generate (no GPU for vLLM)"
    if importlib.util.find_spec("vllm") is None:
        return False, "HF generate (vllm is not installed; docs/GRPO.md 'vLLM' says how to add it)"
    problem = vllm_torch_problem()
    if problem:
        return False, f"HF generate ({problem}; docs/GRPO.md 'vLLM')"
    return True, f"vLLM ({grpo.vllm_mode})"


def torch_requirement_problem(vllm_requires: list[str], torch_version: str) -> str | None:
    """Why the installed torch does not satisfy vLLM's own torch pin (from its package metadata), or None.

    Each vLLM release pins one torch (vllm 0.24: torch==2.11.0); installing vllm into an environment with another
    torch replaces it, and a vllm next to a torch it was not built for fails at import or in its kernels."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    version = Version(torch_version.split("+")[0])
    for line in vllm_requires:
        req = Requirement(line)
        applies = req.marker is None or req.marker.evaluate({"extra": ""})  # not an optional extra's pin
        if req.name == "torch" and applies and req.specifier and version not in req.specifier:
            return f"vllm needs torch{req.specifier}, this environment has torch {torch_version}"
    return None


def vllm_torch_problem() -> str | None:
    """:func:`torch_requirement_problem` for the installed vllm and torch."""
    from importlib.metadata import requires

    import torch

    return torch_requirement_problem(requires("vllm") or [], torch.__version__)


def grpo_arguments(recipe: Recipe, ctx: RunContext, use_vllm: bool, reward_weights: list[float]):
    """TRL's GRPOConfig: the common keys (train/run.py) plus every GRPO knob of the recipe."""
    from trl import GRPOConfig as TRLGRPOConfig

    from train.run import training_kwargs

    g = recipe.grpo
    return TRLGRPOConfig(
        **training_kwargs(recipe, ctx, recipe.train.max_steps),
        num_generations=g.num_generations, loss_type=g.loss_type, beta=g.beta, epsilon=g.epsilon,
        epsilon_high=g.epsilon_high, temperature=g.temperature, top_p=g.top_p,
        max_completion_length=g.max_completion_length, mask_truncated_completions=g.mask_truncated_completions,
        scale_rewards=g.scale_rewards, num_iterations=g.num_iterations, steps_per_generation=g.steps_per_generation,
        reward_weights=list(reward_weights), log_completions=g.log_completions,
        use_vllm=use_vllm, vllm_mode=g.vllm_mode, vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
        # Without it vLLM sizes its context from the model config (Qwen2.5-VL-7B: 128,000 positions), and at
        # vllm_gpu_memory_utilization 0.3 of an 80 GB card the KV cache cannot hold one such sequence: vLLM
        # refuses to start. A rollout never needs more than the longest prompt plus the completion.
        vllm_max_model_length=g.max_prompt_length + g.max_completion_length,
    )


def trl_chat_template_kwargs(processor, thinking: bool = False) -> dict:
    """GRPOConfig.chat_template_kwargs: TRL renders the prompts itself, so it gets the family's template arguments
    with the prompts' thinking switch (``train.grpo.prompts.prompt_thinking``), as the prompt lengths were counted
    (train/grpo/dataset.py). Qwen3.5 with thinking on: the prompt opens ``<think>\\n``, a prefix of every SFT
    sample's rendering; off: the block is closed empty (only a sample without reasoning continues that)."""
    from train.models import family_for_processor

    return family_for_processor(processor).chat_template_kwargs(thinking=thinking)


def suppressed_tokens(processor, model) -> list[int]:
    """Vision special tokens a rollout must never sample (the model family's list): a sampled image/video
    placeholder in a completion would not match the image features of the training forward pass."""
    from train.models import family_for_model

    return family_for_model(model).suppressed_token_ids(processor, model)


def suppression_kwargs(token_ids: list[int], use_vllm: bool) -> dict:
    """``generation_kwargs`` that keep ``token_ids`` out of rollouts. TRL hands these to HF's GenerationConfig, or
    as they are to vLLM's ``SamplingParams``, which has no ``suppress_tokens`` field (a TypeError at the first
    rollout): vLLM gets a -100 logit bias on those tokens instead (probability below e^-100 relative)."""
    if use_vllm:
        return {"logit_bias": {int(t): -100.0 for t in token_ids}}
    return {"suppress_tokens": [int(t) for t in token_ids]}


def check_batch_shape(recipe: Recipe, world: int) -> None:
    """GRPO groups must fit the generation batch: say so with the recipe's own key names."""
    g, t = recipe.grpo, recipe.train
    gen_batch = t.per_device_batch_size * world * g.steps_per_generation
    if gen_batch % g.num_generations:
        raise ValueError(
            f"train.per_device_batch_size ({t.per_device_batch_size}) x processes ({world}) x "
            f"grpo.steps_per_generation ({g.steps_per_generation}) = {gen_batch} completions per generation round, "
            f"not a multiple of grpo.num_generations ({g.num_generations}): every prompt's group must fit in one round")


def check_modes(recipe: Recipe) -> None:
    """The prompt template and the reward mode should agree; a mismatch is legal but worth a warning."""
    expected = {"think": "think", "auto_think": "auto_think", "no_think": "plain"}[recipe.grpo.prompt_mode]
    if recipe.reward.mode != expected:
        log.warning("grpo.prompt_mode=%s with reward.mode=%s (usually reward.mode=%s)",
                    recipe.grpo.prompt_mode, recipe.reward.mode, expected)


# ---------------------------------------------------------------------------- run

def run_trl(recipe: Recipe, flags: list[str], callbacks: tuple = (), decontamination: dict | None = None) -> int:
    """GRPO on TRL; ``callbacks`` are added to the trainer's own (the GRPO benchmark's step clock);
    ``decontamination``: the check's record for run_info.json."""
    from train.callbacks import attach_eval_hook
    from train.grpo.dataset import load_prompts, to_hf_dataset
    from train.grpo.progress import install_on_trainer as install_generation_progress
    from train.grpo.telemetry import LevelTelemetry
    from train.model_loading import load_processor
    from train.rerun import open_run_dir
    from train.run import init_process_group, prepare_model, print_counts, run_callbacks, start_run, train_to_end

    if recipe.train.max_steps <= 0:
        raise ValueError("GRPO needs train.max_steps > 0 (prompts are resampled every epoch; there is no natural end)")
    ctx = start_run(recipe)
    check_batch_shape(recipe, ctx.world)
    check_modes(recipe)

    # Data first: a bad prompt stops the run before any model is loaded.
    processor = load_processor(recipe.model)
    # TRL left-pads prompt ids; the processor's own padding (mm_token_type_ids, used for 3-D rope positions)
    # must match, or prompts of different lengths get the wrong image positions.
    padding_side = processor.tokenizer.padding_side
    processor.tokenizer.padding_side = "left"
    prompts = load_prompts(recipe, processor)
    if ctx.rank == 0:
        from train.eval_share import say_evaluation_plan

        print(prompts.summary(), flush=True)
        say_evaluation_plan(recipe, recipe.train.max_steps, ctx.world)  # what the evaluations cost, said up front
    if "--dry-run" in flags:
        return 0
    dataset = to_hf_dataset(prompts, recipe.data)
    open_run_dir(recipe, ctx.rerun, ctx.rank, "grpo", decontamination)  # rank 0: the previous run resumed or moved aside

    from train.grpo.prompts import prompt_thinking
    from train.models import family_for_processor

    thinking = prompt_thinking(recipe.grpo)
    opened = family_for_processor(processor).think_prefix(processor, thinking)  # Qwen3.5, thinking on: <think>
    funcs, weights = reward_functions(recipe, processor.tokenizer, opened=opened)
    telemetry = LevelTelemetry(weights, eos_token_ids=[], opened=opened)
    wrapped = telemetry.wrap(funcs)
    use_vllm, how = pick_generation(recipe.grpo, ctx.device)
    log.info("rollouts: %s", how)
    if ctx.world > 1:  # the collective timeout; the reference model under ZeRO-3 on CPU needs DeepSpeed's own group
        init_process_group(ctx.device, recipe.train.collective_timeout_s,
                           use_deepspeed=recipe.grpo.beta > 0 and bool(recipe.train.deepspeed) and ctx.device == "cpu")
    args = grpo_arguments(recipe, ctx, use_vllm, weights)
    args.chat_template_kwargs = trl_chat_template_kwargs(processor, thinking)
    model, _, counts = prepare_model(recipe, ctx.device)
    args.generation_kwargs = {**(args.generation_kwargs or {}),
                              **suppression_kwargs(suppressed_tokens(processor, model), use_vllm)}
    print_counts(ctx, counts)

    preemption, own_callbacks = run_callbacks(recipe, ctx, metrics_cls=jsonl_callback)
    trainer = trainer_class()(model=model, reward_funcs=wrapped, args=args, train_dataset=dataset,
                              processing_class=processor, callbacks=[*own_callbacks, *callbacks],
                              optim_cfg=recipe.optim, run_dir=ctx.run_dir,
                              save_total_limit=recipe.train.save_total_limit)
    if ctx.rank == 0:  # the sampled rollout log the run page reads (and wandb's rollout table)
        from train.grpo.rollouts import RolloutLog

        trainer.add_callback(RolloutLog(trainer, ctx.run_dir, [f.__name__ for f in wrapped], weights,
                                        wandb="wandb" in recipe.train.report_to))
    telemetry.eos = {int(t) for t in [*trainer.eos_token_ids, processor.tokenizer.pad_token_id] if t is not None}
    attach_eval_hook(trainer, recipe, processor)
    install_generation_progress(trainer, ctx.rank)  # a line every 10 s while a step's rollouts are generated

    def restore_padding_side():  # the saved checkpoint keeps the model's own setting
        processor.tokenizer.padding_side = padding_side

    return train_to_end(trainer, recipe, ctx, preemption, lambda: {
        "prompts": len(prompts.rows), "levels": dict(prompts.levels), "prompts_skipped": prompts.skipped.skipped,
        "rollouts": how}, before_save=restore_padding_side)
