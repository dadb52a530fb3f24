"""GRPO with TRL's GRPOTrainer: ``run(recipe, flags)`` behind ``launch/grpo.py``.

    python launch/grpo.py recipe=auto_think model.name_or_path=runs/sft/dist_size_corr_motion
    torchrun --nproc_per_node 8 launch/grpo.py recipe=auto_think train.deepspeed=zero3
    python launch/grpo.py recipe=auto_think grpo.backend=verl --dry-run     # verl: parquet + config + command

Shared with SFT (train/sft.py, train/modules.py, train/trainer.py, train/telemetry.py): model loading,
the freeze table and per-group learning rates, LoRA, DeepSpeed configs, atomic checkpoints, pre-emption,
logging sinks, the final save (a plain HF directory at the top of ``train.output_dir``, loadable by
``model.name_or_path=<output_dir>``). GRPO adds: the checked prompt set (train/grpo/dataset.py), the
rewards package's reward functions, per-level telemetry, the rollout engine choice.
"""

from __future__ import annotations

import importlib.util
import logging
from functools import lru_cache
from pathlib import Path

log = logging.getLogger("train.grpo")


def logger_name(key: str) -> str:
    """The name TensorBoard and wandb give a Trainer log key (``L1/reward`` -> ``train/L1/reward``)."""
    from train.telemetry import RENAME

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
    from train.telemetry import JsonlMetrics

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
    from train.trainer import RecipeTrainer

    class SpatialGRPOTrainer(RecipeTrainer, MixedMediaGRPO, GRPOTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.media_hooks = self.install_media_hooks()

    return SpatialGRPOTrainer


# ---------------------------------------------------------------------------- pieces

def reward_functions(recipe):
    """(reward functions in TRL's calling convention, their weights) from the rewards package."""
    from rewards.grpo import make_reward_funcs, reward_weights

    return make_reward_funcs(recipe.reward), reward_weights(recipe.reward)


def pick_generation(grpo, device: str) -> tuple[bool, str]:
    """(use vLLM, why): vLLM when allowed (grpo.use_vllm), installed and on a GPU; HF generate otherwise."""
    if not grpo.use_vllm:
        return False, "HF generate (grpo.use_vllm=false)"
    if device != "cuda":
        return False, "HF generate (no GPU for vLLM)"
    if importlib.util.find_spec("vllm") is None:
        return False, "HF generate (vllm is not installed; pip install vllm for faster rollouts)"
    return True, f"vLLM ({grpo.vllm_mode})"


def grpo_arguments(recipe, run_dir: Path, device: str, dtype, report_to: list[str], use_vllm: bool,
                   reward_weights: list[float]):
    """TRL's GRPOConfig from the recipe (every GRPO knob is a recipe field)."""
    import torch
    from trl import GRPOConfig as TRLGRPOConfig

    from train.sft import SCHEDULERS, deepspeed_config, dist_env

    t, o, g = recipe.train, recipe.optim, recipe.grpo
    _, world = dist_env()
    return TRLGRPOConfig(
        output_dir=str(run_dir), max_steps=t.max_steps, per_device_train_batch_size=t.per_device_batch_size,
        gradient_accumulation_steps=t.grad_accum, learning_rate=o.lr, weight_decay=o.weight_decay,
        adam_beta1=o.betas[0], adam_beta2=o.betas[1], max_grad_norm=o.max_grad_norm,
        lr_scheduler_type=SCHEDULERS[o.scheduler], warmup_steps=o.warmup_ratio,
        logging_steps=t.logging_steps, logging_first_step=True, report_to=report_to or "none",
        save_strategy="steps" if t.save_steps > 0 else "no", save_steps=t.save_steps if t.save_steps > 0 else 500,
        save_total_limit=None, seed=t.seed, data_seed=t.seed, use_cpu=device == "cpu",
        bf16=dtype == torch.bfloat16, fp16=dtype == torch.float16,
        deepspeed=deepspeed_config(t.deepspeed), ddp_backend="gloo" if (device == "cpu" and world > 1) else None,
        ddp_find_unused_parameters=True, ddp_timeout=t.collective_timeout_s, remove_unused_columns=False,
        dataloader_num_workers=recipe.data.num_workers,
        gradient_checkpointing=recipe.model.gradient_checkpointing, disable_tqdm=False, log_level="info",
        log_level_replica="warning",
        # GRPO
        num_generations=g.num_generations, loss_type=g.loss_type, beta=g.beta, epsilon=g.epsilon,
        epsilon_high=g.epsilon_high, temperature=g.temperature, top_p=g.top_p,
        max_completion_length=g.max_completion_length, mask_truncated_completions=g.mask_truncated_completions,
        scale_rewards=g.scale_rewards, num_iterations=g.num_iterations, steps_per_generation=g.steps_per_generation,
        reward_weights=list(reward_weights), log_completions=g.log_completions,
        use_vllm=use_vllm, vllm_mode=g.vllm_mode, vllm_gpu_memory_utilization=g.vllm_gpu_memory_utilization,
    )


VISION_TOKENS = ("<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")


def suppressed_tokens(processor, model) -> list[int]:
    """Vision special tokens a rollout must never sample: a sampled image/video placeholder in a completion
    would not match the image features of the training forward pass (the model's config ids included)."""
    tok = processor.tokenizer
    ids = {getattr(model.config, name, None) for name in ("image_token_id", "video_token_id",
                                                         "vision_start_token_id", "vision_end_token_id")}
    for token in VISION_TOKENS:
        tid = tok.convert_tokens_to_ids(token)
        if tid is not None and tid != tok.unk_token_id:
            ids.add(tid)
    return sorted(int(i) for i in ids if i is not None)


def check_batch_shape(recipe, world: int) -> None:
    """GRPO groups must fit the generation batch: say so with the recipe's own key names."""
    g, t = recipe.grpo, recipe.train
    gen_batch = t.per_device_batch_size * world * g.steps_per_generation
    if gen_batch % g.num_generations:
        raise ValueError(
            f"train.per_device_batch_size ({t.per_device_batch_size}) x processes ({world}) x "
            f"grpo.steps_per_generation ({g.steps_per_generation}) = {gen_batch} completions per generation round, "
            f"not a multiple of grpo.num_generations ({g.num_generations}): every prompt's group must fit in one round")


def check_modes(recipe) -> None:
    """The prompt template and the reward mode should agree; a mismatch is legal but worth a warning."""
    expected = {"think": "think", "auto_think": "auto_think", "no_think": "plain"}[recipe.grpo.prompt_mode]
    if recipe.reward.mode != expected:
        log.warning("grpo.prompt_mode=%s with reward.mode=%s (usually reward.mode=%s)",
                    recipe.grpo.prompt_mode, recipe.reward.mode, expected)


# ---------------------------------------------------------------------------- run

def run(recipe, flags: list[str]) -> int:
    """Train with the recipe's backend. Bad data (a sample named by file and row) exits 1 with one clear line."""
    from data_mix.badsample import BadSample, TooManyBadSamples
    from train.cli import report_user_error
    from train.grpo import verl_backend
    from train.grpo.dataset import GRPODataError
    from train.grpo.prompts import PromptError

    try:
        if recipe.grpo.backend == "verl":
            return verl_backend.run(recipe, flags)
        return run_trl(recipe, flags)
    except (BadSample, TooManyBadSamples, GRPODataError, PromptError, verl_backend.VerlBackendError) as exc:
        return report_user_error("launch/grpo.py", exc)


def run_trl(recipe, flags: list[str]) -> int:
    import torch
    import transformers

    from train import checkpoint as ckpt
    from train.grpo.dataset import load_prompts, to_hf_dataset
    from train.grpo.telemetry import LevelTelemetry
    from train.modeling import load_processor, pick_device, pick_dtype
    from train.modules import format_counts
    from train.run_info import write_run_info
    from train.sft import dist_env, init_process_group, prepare_model, train_to_end
    from train.telemetry import Preemption, attach_eval_hook, hf_report_to

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if recipe.train.num_threads is not None:
        torch.set_num_threads(recipe.train.num_threads)
    if recipe.train.max_steps <= 0:
        raise ValueError("GRPO needs train.max_steps > 0 (prompts are resampled every epoch; there is no natural end)")
    rank, world = dist_env()
    run_dir = Path(recipe.train.output_dir)
    device = pick_device(recipe.train.device)
    dtype = pick_dtype(recipe.model.dtype, device)
    transformers.set_seed(recipe.train.seed)
    check_batch_shape(recipe, world)
    check_modes(recipe)

    # Data first: a bad prompt stops the run before any model is loaded.
    processor = load_processor(recipe.model)
    # TRL left-pads prompt ids; the processor's own padding (mm_token_type_ids, used for Qwen's 3-D positions)
    # must match, or prompts of different lengths get the wrong image positions.
    padding_side = processor.tokenizer.padding_side
    processor.tokenizer.padding_side = "left"
    prompts = load_prompts(recipe, processor)
    if rank == 0:
        print(prompts.summary(), flush=True)
    if "--dry-run" in flags:
        return 0
    dataset = to_hf_dataset(prompts, recipe.data)
    if rank == 0:
        write_run_info(recipe, run_dir, "grpo")

    funcs, weights = reward_functions(recipe)
    telemetry = LevelTelemetry(weights, eos_token_ids=[])
    wrapped = telemetry.wrap(funcs)
    use_vllm, how = pick_generation(recipe.grpo, device)
    log.info("rollouts: %s", how)
    resume_from = ckpt.resolve_resume(recipe.train.resume, run_dir)
    report_to = hf_report_to(list(recipe.train.report_to), run_dir)
    if world > 1:  # the collective timeout; the reference model under ZeRO-3 on CPU needs DeepSpeed's own group
        init_process_group(device, recipe.train.collective_timeout_s,
                           use_deepspeed=recipe.grpo.beta > 0 and bool(recipe.train.deepspeed) and device == "cpu")
    args = grpo_arguments(recipe, run_dir, device, dtype, report_to, use_vllm, weights)
    model, _, counts = prepare_model(recipe, device)
    args.generation_kwargs = {**(args.generation_kwargs or {}), "suppress_tokens": suppressed_tokens(processor, model)}
    if rank == 0:
        print("trainable parameters per group:\n" + format_counts(counts), flush=True)

    preemption = Preemption()
    callbacks = [preemption]
    if "jsonl" in recipe.train.report_to:
        callbacks.append(jsonl_callback(run_dir / "metrics.jsonl"))
    trainer = trainer_class()(model=model, reward_funcs=wrapped, args=args, train_dataset=dataset,
                              processing_class=processor, callbacks=callbacks, optim_cfg=recipe.optim,
                              run_dir=run_dir, save_total_limit=recipe.train.save_total_limit)
    telemetry.eos = {int(t) for t in [*trainer.eos_token_ids, processor.tokenizer.pad_token_id] if t is not None}
    attach_eval_hook(trainer, recipe, processor)

    def restore_padding_side():  # the saved checkpoint keeps the model's own setting
        processor.tokenizer.padding_side = padding_side

    return train_to_end(trainer, recipe, run_dir, resume_from, preemption, lambda: {
        "prompts": len(prompts.rows), "levels": dict(prompts.levels), "prompts_skipped": prompts.skipped.skipped,
        "rollouts": how}, before_save=restore_padding_side)


