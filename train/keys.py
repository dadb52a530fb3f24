"""The key table of the whole recipe: one :class:`rewards.keyspec.KeySpec` per leaf key.

Type, default and doc are the dataclass fields (train/config.py, data_mix/config.py, eval_hooks/config.py,
rewards/config.py); what a type cannot say is declared here (the reward section in rewards/config.py):
allowed values or range, provenance, and what each GRPO backend does with the key (a TRL GRPOConfig argument,
a verl config path, the project's own code on both, or unsupported with the reason). A dataclass field without
a verl mapping, or a mapping that is neither, fails tests/test_keys.py (the key walk).

    python -m train.keydoc --markdown > docs/KEYS.md     # the reference page (a test keeps it current)
    python launch/sft.py --explain optim.lr            # one key (every launcher)
"""

from __future__ import annotations

from functools import lru_cache

from eval_hooks.inputs import INPUTS
from eval_hooks.judging import JUDGE_POLICIES
from eval_hooks.protocol import PROTOCOLS
from rewards.config import reward_table
from rewards.keyspec import Key, KeySpec, build_table
from rewards.taxonomy import AGGREGATION_MODES, WEIGHTINGS

POS, NONNEG, SHARE = "[1, inf)", "[0, inf)", "(0, 1]"
ACTOR = "actor_rollout_ref.actor."
ROLLOUT = "actor_rollout_ref.rollout."
MODEL = "actor_rollout_ref.model."


def _unless_eval(v, d, r) -> bool:
    """Evaluation keys verl does not use: harmless without mid-training evaluation, or at their default."""
    return not (r.eval.bench and (r.eval.every_steps > 0 or r.eval.at_start)) or v == d


def _eval_key(what: str = "") -> Key:
    return Key(verl="unsupported: verl validates on every record with its own rollout settings (greedy, "
               "grpo.max_completion_length) and logs rewards per level, not the hook's hierarchy scores"
               + (f"; {what}" if what else ""), verl_ok=_unless_eval)


def _kw(key: Key) -> dict:
    """A Key's backend fields, to merge into another declaration."""
    return {"verl": key.verl, "verl_ok": key.verl_ok}


def _verl_only(path: str, **kw) -> Key:
    return Key(trl=VERL_ONLY, verl=path, **kw)


VERL_ONLY = "project: read only when grpo.backend=verl"
SAME_LR = "unsupported: verl has one learning rate for the whole model (optim.lr)"
PROMPTS = "project: applied when the prompts are loaded and checked, before either backend starts"
LMMS = "unsupported: the lmms-eval hook runs on the TRL and SFT trainers' checkpoints, not on verl's"

DECLARED: dict[str, Key] = {
    # ------------------------------------------------------------------ top level
    "name": Key(verl="trainer.experiment_name"),
    "description": Key(verl="project: written to the run directory only"),
    "bases": Key(verl="project: merged when the recipe is composed"),
    # ------------------------------------------------------------------ model
    "model.name_or_path": Key(verl=MODEL + "path"),
    "model.freeze.vision": Key(provenance="SpatialScore", source="SpatialScore's SFT freezes the vision encoder",
                               verl=ACTOR + "freeze_vision_tower"),
    "model.freeze.projector": Key(verl="unsupported: verl can freeze only the vision tower; the projector trains",
                                  probe="true"),
    "model.freeze.llm": Key(verl="unsupported: verl has no switch to freeze the language model; it trains",
                            probe="true"),
    "model.lora.enabled": Key(verl=MODEL + "lora_rank"),
    "model.lora.r": Key(range=POS, verl=MODEL + "lora_rank", when=("model.lora.enabled=true",)),
    "model.lora.alpha": Key(range=POS, verl=MODEL + "lora_alpha"),
    "model.lora.dropout": Key(range="[0, 1)", verl="unsupported: verl's FSDP LoRA has no dropout",
                              verl_ok=lambda v, d, r: not r.model.lora.enabled or not v,
                              when=("model.lora.enabled=true",)),
    "model.lora.target_modules": Key(verl=MODEL + "target_modules", when=("model.lora.enabled=true",),
                                     probe="[q_proj]"),
    "model.lora.merge_on_save": Key(verl="unsupported: verl writes its own checkpoints; the project's merged final "
                                         "save does not happen", verl_ok=lambda v, d, r: not r.model.lora.enabled,
                                    when=("model.lora.enabled=true",)),
    "model.attn_implementation": Key(choices=("auto", "sdpa", "eager", "flash_attention_2", "flash_varlen_standin"),
                                     verl="unsupported: verl picks the attention kernel itself"),
    "model.dtype": Key(choices=("auto", "bf16", "fp16", "fp32"),
                       verl="unsupported: verl trains in its own FSDP mixed precision (bf16 compute)"),
    "model.trainable_fp32": Key(verl="unsupported: verl's FSDP keeps its own fp32 master weights", probe="true"),
    "model.gradient_checkpointing": Key(trl="arg:gradient_checkpointing",
                                        verl=MODEL + "enable_gradient_checkpointing"),
    "model.trust_remote_code": Key(verl=MODEL + "trust_remote_code"),
    # ------------------------------------------------------------------ optim
    "optim.lr": Key(range="(0, inf)", trl="arg:learning_rate", verl=ACTOR + "optim.lr"),
    "optim.projector_lr": Key(range=NONNEG, verl=SAME_LR, probe="0.5",
                              verl_ok=lambda v, d, r: r.model.freeze.projector or v == r.optim.lr),
    "optim.vision_lr": Key(range=NONNEG, verl=SAME_LR, probe="0.5", when=("model.freeze.vision=false",),
                           verl_ok=lambda v, d, r: r.model.freeze.vision or v == r.optim.lr),
    "optim.weight_decay": Key(range=NONNEG, verl=ACTOR + "optim.weight_decay"),
    "optim.betas": Key(verl=ACTOR + "optim.betas", probe="[0.8,0.99]"),
    "optim.eps": Key(range="(0, inf)", source="torch's AdamW default",
                     verl="unsupported: not passed to verl (its actor's AdamW keeps its own eps)"),
    "optim.warmup_ratio": Key(range="[0, 1)", trl="arg:warmup_steps", verl=ACTOR + "optim.lr_warmup_steps_ratio"),
    "optim.scheduler": Key(choices=("cosine", "linear", "constant"), trl="arg:lr_scheduler_type",
                           verl="unsupported: verl's actor has cosine and constant schedules; it runs constant",
                           verl_ok=lambda v, d, r: v in ("cosine", "constant")),
    "optim.max_grad_norm": Key(range=NONNEG, trl="arg:max_grad_norm", verl=ACTOR + "optim.clip_grad"),
    # ------------------------------------------------------------------ train
    "train.output_dir": Key(trl="arg:output_dir", verl="trainer.default_local_dir"),
    "train.max_steps": Key(range="[-1, inf)", trl="arg:max_steps", verl="trainer.total_training_steps"),
    "train.per_device_batch_size": Key(range=POS, trl="arg:per_device_train_batch_size",
                                       verl="data.train_batch_size"),
    "train.grad_accum": Key(range=POS, trl="arg:gradient_accumulation_steps", verl="data.train_batch_size"),
    "train.seed": Key(trl="arg:seed", verl="data.seed"),
    "train.deepspeed": Key(verl="unsupported: verl shards the model with FSDP", probe="zero2"),
    "train.packing": Key(trl="unsupported: GRPO does not pack rollouts (an SFT key)",
                         verl="unsupported: GRPO does not pack rollouts (an SFT key)"),
    "train.packing_max_length": Key(range=POS, verl="project: read only with train.packing (SFT)"),
    "train.save_steps": Key(range=NONNEG, trl="arg:save_steps", verl="trainer.save_freq"),
    "train.save_total_limit": Key(range=NONNEG, verl="unsupported: verl keeps every checkpoint (set "
                                  "trainer.max_actor_ckpt_to_keep in grpo.verl.overrides)",
                                  verl_ok=lambda v, d, r: not v),
    "train.resume": Key(verl="trainer.resume_mode", probe="never"),
    "train.logging_steps": Key(range=POS, trl="arg:logging_steps",
                               verl="unsupported: verl logs every step"),
    "train.report_to": Key(verl="unsupported: verl logs to the console, tensorboard and wandb; no metrics.jsonl",
                           verl_ok=lambda v, d, r: "jsonl" not in v, probe="[jsonl]"),
    "train.num_threads": Key(range=POS, verl="unsupported: verl's workers keep torch's thread count", probe="2"),
    "train.device": Key(choices=("auto", "cpu", "cuda"), verl="unsupported: verl runs on GPUs only",
                        verl_ok=lambda v, d, r: v != "cpu", probe="cpu"),
    "train.collective_timeout_s": Key(range=POS, source="torch's default (1800 s)", trl="arg:ddp_timeout",
                                      verl="unsupported: verl keeps its own collective timeouts"),
    # ------------------------------------------------------------------ data and mix: read before either backend
    "data.on_bad_sample": Key(choices=("error", "skip")),
    "data.max_skip_fraction": Key(range="[0, 1]"),
    "data.skip_check_after": Key(range=NONNEG),
    "data.max_length": Key(range=POS),
    "data.video_fps": Key(range="(0, inf)"),
    "data.video_max_frames": Key(range=POS),
    "data.image_max_pixels": Key(range=POS),
    "data.image_min_pixels": Key(range=POS),
    "data.video_max_pixels": Key(range=POS),
    "data.token_estimate_rows": Key(range=POS),
    "data.num_workers": Key(range=NONNEG, trl="arg:dataloader_num_workers", verl="data.dataloader_num_workers"),
    "data.decontaminate": Key(choices=("error", "warn", "off")),
    "mix.unit": Key(choices=("samples", "tokens")),
    "mix.groups.*.weight": Key(range=NONNEG),
    "mix.groups.*.fraction": Key(range=SHARE),
    "mix.budget.unit": Key(choices=("samples", "tokens", "epochs")),
    "mix.budget.value": Key(range="(0, inf)"),
    # ------------------------------------------------------------------ grpo
    "grpo.backend": Key(choices=("trl", "verl"), verl="project: picks the backend (train/grpo/backends.py)"),
    "grpo.prompt_mode": Key(choices=("think", "no_think", "auto_think"),
                            source="the paper's RL@think and RL@auto-think", verl=PROMPTS),
    "grpo.levels": Key(verl=PROMPTS),
    "grpo.num_generations": Key(range="[2, inf)", trl="arg:num_generations", verl=ROLLOUT + "n"),
    "grpo.loss_type": Key(choices=("dapo", "grpo", "dr_grpo", "bnpo"), trl="arg:loss_type",
                          verl=ACTOR + "loss_agg_mode"),
    "grpo.beta": Key(range=NONNEG, trl="arg:beta", verl=ACTOR + "kl_loss_coef"),
    "grpo.epsilon": Key(range="(0, 1]", trl="arg:epsilon", verl=ACTOR + "clip_ratio_low"),
    "grpo.epsilon_high": Key(range=NONNEG, trl="arg:epsilon_high", verl=ACTOR + "clip_ratio_high"),
    "grpo.temperature": Key(range="(0, inf)", trl="arg:temperature", verl=ROLLOUT + "temperature"),
    "grpo.top_p": Key(range=SHARE, trl="arg:top_p", verl=ROLLOUT + "top_p"),
    "grpo.max_prompt_length": Key(range=POS, trl="project: longer prompts are rejected at load",
                                  verl="data.max_prompt_length"),
    "grpo.max_completion_length": Key(range=POS, trl="arg:max_completion_length", verl="data.max_response_length"),
    "grpo.mask_truncated_completions": Key(
        trl="arg:mask_truncated_completions", verl="unsupported: verl's GRPO trains on truncated completions too",
        verl_ok=lambda v, d, r: not v, probe="true"),
    "grpo.scale_rewards": Key(choices=("group", "batch", "none"), trl="arg:scale_rewards",
                              verl="unsupported: verl normalises advantages per group (std), not per batch",
                              verl_ok=lambda v, d, r: v != "batch", probe="batch"),
    "grpo.num_iterations": Key(range=POS, trl="arg:num_iterations", verl=ACTOR + "ppo_epochs"),
    "grpo.steps_per_generation": Key(range=POS, trl="arg:steps_per_generation",
                                     verl="unsupported: verl makes one optimizer step per rollout batch",
                                     verl_ok=lambda v, d, r: v == r.train.grad_accum, probe="3"),
    "grpo.use_vllm": Key(trl="arg:use_vllm",
                         verl="unsupported: verl always rolls out with grpo.verl.rollout (vllm or sglang)"),
    "grpo.vllm_mode": Key(choices=("colocate", "server"), trl="arg:vllm_mode",
                          verl="unsupported: verl runs its rollout engine itself (grpo.verl.rollout)"),
    "grpo.vllm_gpu_memory_utilization": Key(range=SHARE, trl="arg:vllm_gpu_memory_utilization",
                                            verl="unsupported: verl's is grpo.verl.gpu_memory_utilization"),
    "grpo.log_completions": Key(trl="arg:log_completions",
                                verl="unsupported: verl logs validation generations only "
                                     "(trainer.log_val_generations)", verl_ok=lambda v, d, r: not v),
    "grpo.ray_address": Key(trl=VERL_ONLY, verl="ray_kwargs.ray_init.address",
                            probe="auto"),
    "grpo.verl.python": _verl_only("project: the interpreter of verl's command", probe="/usr/bin/python3"),
    "grpo.verl.nnodes": _verl_only("trainer.nnodes", range=POS),
    "grpo.verl.gpus_per_node": _verl_only("trainer.n_gpus_per_node", range=POS),
    "grpo.verl.rollout": _verl_only(ROLLOUT + "name", choices=("vllm", "sglang")),
    "grpo.verl.rollout_tp": _verl_only(ROLLOUT + "tensor_model_parallel_size", range=POS),
    "grpo.verl.gpu_memory_utilization": _verl_only(ROLLOUT + "gpu_memory_utilization", range=SHARE),
    "grpo.verl.train_batch_size": _verl_only("data.train_batch_size", range=POS),
    "grpo.verl.ppo_micro_batch_size_per_gpu": _verl_only(ACTOR + "ppo_micro_batch_size_per_gpu", range=POS),
    "grpo.verl.val_fraction": _verl_only("project: the share of prompts written to val.parquet", range="[0, 1)",
                                         when=("eval.bench=null",)),
    "grpo.verl.overrides": _verl_only("project: appended to verl's command", probe="[trainer.total_epochs=2]"),
    # ------------------------------------------------------------------ eval
    "eval.bench": Key(verl="unsupported: verl validates on every record with its own rollout settings (greedy, "
                           "grpo.max_completion_length) and logs rewards per level, not the hook's hierarchy "
                           "scores", verl_ok=lambda v, d, r: not (v and (r.eval.every_steps > 0 or r.eval.at_start))),
    "eval.protocol": Key(choices=tuple(PROTOCOLS), **_kw(_eval_key())),
    "eval.final_protocol": Key(choices=tuple(PROTOCOLS), verl="unsupported: the final evaluation runs after the "
                               "TRL and SFT trainers only", probe="paper"),
    "eval.every_steps": Key(range=NONNEG, verl="trainer.test_freq", when=("eval.bench=spatialtree_bench",)),
    "eval.at_start": Key(verl="trainer.val_before_train"),
    "eval.at_end": _eval_key(),
    "eval.max_samples_per_leaf": Key(range=NONNEG, **_kw(_eval_key())),
    "eval.max_new_tokens": Key(range=NONNEG, **_kw(_eval_key())),
    "eval.batch_size": Key(range=POS, **_kw(_eval_key())),
    "eval.do_sample": _eval_key(),
    "eval.temperature": Key(range=NONNEG, **_kw(_eval_key())),
    "eval.top_p": Key(range=SHARE, **_kw(_eval_key())),
    "eval.mode": Key(choices=AGGREGATION_MODES, **_kw(_eval_key())),
    "eval.weights": Key(choices=tuple(WEIGHTINGS), **_kw(_eval_key())),
    "eval.inputs": Key(choices=INPUTS, **_kw(_eval_key())),
    "eval.judge": Key(choices=JUDGE_POLICIES, verl="project: checked at start by every launcher"),
    "eval.zero3_gather_params": _eval_key(),
    "eval.prompt_template": Key(**_kw(_eval_key()), probe="'Q: {question}'"),
    "eval.answer_extraction": Key(choices=("auto", "none"), **_kw(_eval_key())),
    "eval.seed": _eval_key(),
    "eval.repeats": Key(range=POS, **_kw(_eval_key())),
    "eval.generation_seed": _eval_key(),
    "eval.lmms_eval_tasks": Key(verl=LMMS, probe="[vsibench]"),
    "eval.lmms_eval_model": Key(verl=LMMS),
    "eval.lmms_eval_args": Key(verl=LMMS, probe="[--limit,1]"),
    "eval.lmms_eval_model_args": Key(verl=LMMS),
    "eval.lmms_eval_python": Key(verl=LMMS, probe="/usr/bin/python3"),
    "eval.lmms_eval_data": Key(verl=LMMS),
    "eval.lmms_eval_devices": Key(verl=LMMS, probe="'1'"),
    "eval.lmms_eval_max_running": Key(range=POS, verl=LMMS),
}
"""What the dataclasses cannot say, per key; keys left out take their section's default (:data:`SECTIONS`). Where
the library that reads a key keeps its own list of values (the protocols, the tree's aggregation modes and
weightings, the input modes, the judge policies), the table takes that list rather than a copy."""

SECTIONS: dict[str, tuple[str, str | None]] = {
    "": ("project: the recipe loader", None),
    "model.": ("project: train/model_loading.py and the freeze table", None),
    "optim.": ("project: the optimizer built in train/module_groups.py", None),
    "train.": ("project: the run skeleton (train/run.py)", None),
    "data.": ("project: the data readers", PROMPTS),
    "mix.": ("project: the mix", PROMPTS),
    "grpo.": ("project: train/grpo", None),
    "grpo.templates.": ("project: train/grpo/prompts.py", PROMPTS),
    "eval.": ("project: the evaluation hook (eval_hooks)", None),
}
"""Key prefix -> (TRL, verl) mapping of the keys that declare none (the longest prefix wins). Only sections that
are wholly read before either backend starts have a verl default: a new key elsewhere must say what verl does
with it (tests/test_keys.py fails until it does)."""


@lru_cache(maxsize=1)
def table() -> dict[str, KeySpec]:
    """Every leaf key of the recipe, in the order of the dataclasses."""
    from train.config import Recipe

    out: dict[str, KeySpec] = {}
    for key, spec in build_table(Recipe, "", DECLARED, trl="", verl="").items():
        if key.startswith("reward."):
            continue
        prefix = max((p for p in SECTIONS if key.startswith(p)), key=len)
        trl, verl = SECTIONS[prefix]
        out[key] = spec.__class__(**{**spec.__dict__, "trl": spec.trl or trl, "verl": spec.verl or verl})
    out.update(reward_table())
    return out

