"""The verl backend (``grpo.backend=verl``): parquet + a verl config + the command that runs verl on Ray.

verl 0.9.1 pins transformers<5.11 and omegaconf<2.4, so it lives in its own environment
(``scripts/verl/setup_env.sh`` -> ``.venv-verl``). This module runs in the project's environment: it
checks and converts the recipe's prompts (the same checks as the TRL backend), writes
``<output_dir>/verl/{train,val}.parquet`` and ``<output_dir>/verl/grpo_verl.yaml`` (a Hydra config that
composes verl's own ``ppo_trainer`` defaults with the recipe's values), prints the command and, unless
``--dry-run``, runs it. verl's trainer then starts (or joins, with ``grpo.ray_address``) a Ray cluster.

Rewards: verl's reward manager calls ``rewards/verl_reward.py:compute_score`` with the recipe's
``reward`` section as ``reward_kwargs``, so verl and TRL score a completion identically.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from train.recipe import REPO_ROOT

if TYPE_CHECKING:
    from train.config import Recipe

log = logging.getLogger(__name__)

CONFIG_NAME = "grpo_verl"
REWARD_FILE = REPO_ROOT / "rewards" / "verl_reward.py"
# grpo.loss_type -> verl's actor.loss_agg_mode (how token losses are aggregated).
LOSS_AGG = {"dapo": "token-mean", "bnpo": "token-mean", "grpo": "seq-mean-token-mean",
            "dr_grpo": "seq-mean-token-sum-norm"}
REPORT_TO = {"tensorboard": "tensorboard", "wandb": "wandb"}


class VerlBackendError(RuntimeError):
    """The verl run cannot be prepared or started; the message says why and what to do."""


def verl_dir(recipe: Recipe) -> Path:
    return Path(recipe.train.output_dir) / "verl"


def verl_python(recipe: Recipe) -> Path:
    path = Path(recipe.grpo.verl.python)
    return path if path.is_absolute() else REPO_ROOT / path


def reward_kwargs(recipe: Recipe) -> dict[str, Any]:
    """What the reward adapter receives besides the sample: the recipe's reward section as plain data, and
    with ``reward.length_unit=tokens`` the policy's tokenizer (the model path) to count lengths as TRL does."""
    kwargs: dict[str, Any] = {"reward_config": dataclasses.asdict(recipe.reward)}
    if recipe.reward.length_unit == "tokens":
        kwargs["tokenizer"] = _resolved_model_path(recipe.model.name_or_path)
    return kwargs


def _resolved_model_path(name_or_path: str) -> str:
    from train.model_loading import resolve_model_path

    path = resolve_model_path(name_or_path)
    return str(Path(path).resolve()) if Path(path).exists() else path


def uncarried(recipe: Recipe) -> list[str]:
    """What the recipe asks for that the verl config cannot express: one line per recipe key (empty when all is
    carried). :func:`build_config` logs each as a warning; docs/GRPO.md lists them."""
    m, o, t, g, e = recipe.model, recipe.optim, recipe.train, recipe.grpo, recipe.eval
    lines = []

    def note(key: str, value: Any, what_verl_does: str) -> None:
        lines.append(f"{key}={value!r}: {what_verl_does}")

    if m.freeze.projector:
        note("model.freeze.projector", True, "verl can freeze only the vision tower; the projector trains")
    if m.freeze.llm:
        note("model.freeze.llm", True, "verl has no switch to freeze the language model; it trains")
    if not m.freeze.projector and o.projector_lr != o.lr:
        note("optim.projector_lr", o.projector_lr, f"verl has one learning rate for the whole model (optim.lr={o.lr})")
    if not m.freeze.vision and o.vision_lr != o.lr:
        note("optim.vision_lr", o.vision_lr, f"verl has one learning rate for the whole model (optim.lr={o.lr})")
    if o.scheduler not in ("cosine", "constant"):
        note("optim.scheduler", o.scheduler, "verl's actor has cosine and constant schedules; it runs constant")
    if m.lora.enabled and m.lora.dropout:
        note("model.lora.dropout", m.lora.dropout, "verl's FSDP LoRA has no dropout")
    if m.dtype != "auto":
        note("model.dtype", m.dtype, "verl trains in its own FSDP mixed precision (bf16 compute)")
    if m.attn_implementation != "auto":
        note("model.attn_implementation", m.attn_implementation, "verl picks the attention kernel itself")
    if t.deepspeed:
        note("train.deepspeed", t.deepspeed, "verl shards the model with FSDP")
    if t.save_total_limit:
        note("train.save_total_limit", t.save_total_limit, "verl keeps every checkpoint (set "
             "trainer.max_actor_ckpt_to_keep in grpo.verl.overrides)")
    if "jsonl" in t.report_to:
        note("train.report_to", list(t.report_to), "verl logs to the console, tensorboard and wandb; no metrics.jsonl")
    if g.scale_rewards == "batch":
        note("grpo.scale_rewards", "batch", "verl normalises advantages per group (std), not per batch")
    if g.mask_truncated_completions:
        note("grpo.mask_truncated_completions", True, "verl's GRPO trains on truncated completions too")
    if g.steps_per_generation != t.grad_accum:
        note("grpo.steps_per_generation", g.steps_per_generation, "verl makes one optimizer step per rollout batch")
    if g.log_completions:
        note("grpo.log_completions", True, "verl logs validation generations only (trainer.log_val_generations)")
    if e.bench and (e.every_steps > 0 or e.at_start):
        note("eval.bench", e.bench, "verl validates on every record with its own rollout settings (greedy, "
             "grpo.max_completion_length) and logs rewards per level, not the hook's hierarchy scores; "
             "eval.max_samples_per_leaf, max_new_tokens, do_sample, temperature, prompt_template, answer_extraction, "
             "mode and at_end are not used")
    return lines


def build_config(recipe: Recipe, train_file: Path, val_file: Path) -> dict[str, Any]:
    """The verl config (as a dict) for ``recipe``: verl's ppo_trainer defaults + these keys. Every recipe key it
    cannot carry is logged here, once (:func:`uncarried`)."""
    g, v, t, o, m = recipe.grpo, recipe.grpo.verl, recipe.train, recipe.optim, recipe.model
    for line in uncarried(recipe):
        log.warning("grpo.backend=verl cannot carry %s", line)
    loggers = ["console"] + [REPORT_TO[s] for s in t.report_to if s in REPORT_TO]
    run_dir = Path(t.output_dir).resolve()
    env_vars = {"PYTHONPATH": str(REPO_ROOT), "TOKENIZERS_PARALLELISM": "false"}
    cfg: dict[str, Any] = {
        "hydra": {"searchpath": ["pkg://verl.trainer.config"]},
        "defaults": ["ppo_trainer", "_self_"],
        "data": {
            "train_files": [str(train_file)],
            "val_files": [str(val_file)],
            "prompt_key": "prompt",
            "image_key": "images",
            "max_prompt_length": g.max_prompt_length,
            "max_response_length": g.max_completion_length,
            "train_batch_size": v.train_batch_size,
            "filter_overlong_prompts": False,  # checked before export: an over-long prompt is an error there
            "truncation": "error",
            "return_raw_chat": True,
            "shuffle": True,
            "seed": t.seed,
            "dataloader_num_workers": recipe.data.num_workers,
            "trust_remote_code": m.trust_remote_code,
        },
        "actor_rollout_ref": {
            "model": {
                "path": _resolved_model_path(m.name_or_path),
                "enable_gradient_checkpointing": m.gradient_checkpointing,
                "use_remove_padding": True,
                "trust_remote_code": m.trust_remote_code,
                "lora_rank": m.lora.r if m.lora.enabled else 0,
                "lora_alpha": m.lora.alpha,
                "target_modules": list(m.lora.target_modules) if m.lora.enabled else "all-linear",
            },
            "actor": {
                "optim": {"lr": o.lr, "weight_decay": o.weight_decay, "betas": list(o.betas),
                          "lr_warmup_steps_ratio": o.warmup_ratio, "clip_grad": o.max_grad_norm,
                          "lr_scheduler_type": "cosine" if o.scheduler == "cosine" else "constant"},
                "ppo_mini_batch_size": v.train_batch_size,
                "ppo_micro_batch_size_per_gpu": v.ppo_micro_batch_size_per_gpu,
                "ppo_epochs": g.num_iterations,
                "use_kl_loss": g.beta > 0,
                "kl_loss_coef": g.beta,
                "kl_loss_type": "low_var_kl",
                "clip_ratio_low": g.epsilon,
                "clip_ratio_high": g.epsilon_high,
                "loss_agg_mode": LOSS_AGG[g.loss_type],
                "entropy_coeff": 0.0,
                "freeze_vision_tower": m.freeze.vision,
            },
            "rollout": {
                "name": v.rollout,
                "n": g.num_generations,
                "temperature": g.temperature,
                "top_p": g.top_p,
                "tensor_model_parallel_size": v.rollout_tp,
                "gpu_memory_utilization": v.gpu_memory_utilization,
                "log_prob_micro_batch_size_per_gpu": v.ppo_micro_batch_size_per_gpu,
            },
            "ref": {"log_prob_micro_batch_size_per_gpu": v.ppo_micro_batch_size_per_gpu},
        },
        "algorithm": {
            "adv_estimator": "grpo",
            "norm_adv_by_std_in_grpo": g.scale_rewards != "none",
            "use_kl_in_reward": False,
        },
        "reward": {
            "custom_reward_function": {"path": str(REWARD_FILE), "name": "compute_score",
                                       "reward_kwargs": reward_kwargs(recipe)},
            "reward_manager": {"name": "naive"},
        },
        "trainer": {
            "project_name": "spatialtree",
            "experiment_name": recipe.name,
            "logger": loggers,
            "nnodes": v.nnodes,
            "n_gpus_per_node": v.gpus_per_node,
            "total_epochs": 1000 if t.max_steps > 0 else 1,
            "total_training_steps": t.max_steps if t.max_steps > 0 else None,
            "save_freq": t.save_steps if t.save_steps > 0 else -1,
            "test_freq": recipe.eval.every_steps if (recipe.eval.bench and recipe.eval.every_steps > 0) else -1,
            "val_before_train": bool(recipe.eval.bench and recipe.eval.at_start),
            "default_local_dir": str(run_dir / "verl" / "checkpoints"),
            "resume_mode": "auto" if t.resume == "auto" else ("disable" if t.resume == "never" else "resume_path"),
        },
        "ray_kwargs": {"ray_init": {"runtime_env": {"env_vars": env_vars}}},
    }
    if t.resume not in ("auto", "never"):
        cfg["trainer"]["resume_from_path"] = t.resume
    if g.ray_address:
        cfg["ray_kwargs"]["ray_init"]["address"] = g.ray_address
    return cfg


def write_config(cfg: dict[str, Any], out_dir: Path) -> Path:
    from omegaconf import OmegaConf

    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{CONFIG_NAME}.yaml"
    header = ("# Written by launch/grpo.py (grpo.backend=verl) from the resolved recipe in ../recipe.yaml.\n"
              "# verl's own ppo_trainer defaults come first (hydra.searchpath); the keys below override them.\n")
    path.write_text(header + OmegaConf.to_yaml(OmegaConf.create(cfg)))
    return path


def command(recipe: Recipe, config_path: Path) -> list[str]:
    """The command that starts verl's trainer with the written config (plus ``grpo.verl.overrides``)."""
    return [str(verl_python(recipe)), "-m", "verl.trainer.main_ppo",
            f"--config-path={config_path.parent.resolve()}", f"--config-name={config_path.stem}",
            *recipe.grpo.verl.overrides]


def _bench_rows(recipe: Recipe, processor):
    """The benchmark (``eval.bench``) as verl's validation prompts, or None when there is none."""
    from data_mix.readers import read_source
    from train.grpo.dataset import load_prompts

    if not recipe.eval.bench:
        return None
    from eval_hooks.subset import bench_source

    samples = [s for s in read_source(bench_source(recipe.eval.bench, recipe.data), recipe.data) if s.metricfunc]
    return load_prompts(recipe, processor, samples=samples, backend="verl").rows


def prepare(recipe: Recipe, decontamination: dict | None = None) -> tuple[Path, list[str]]:
    """Write parquet files and config; return (config path, command). ``decontamination``: for run_info.json."""
    from train.grpo.dataset import load_prompts
    from train.grpo.verl_export import write_parquet
    from train.model_loading import load_processor
    from train.run_info import write_run_info

    out = verl_dir(recipe)
    write_run_info(recipe, recipe.train.output_dir, "launch/grpo.py (verl)", decontamination=decontamination)
    processor = load_processor(recipe.model)
    prompts = load_prompts(recipe, processor, backend="verl")
    print(prompts.summary())
    train_file = write_parquet(prompts.rows, out / "train.parquet", recipe.data)
    val_rows = _bench_rows(recipe, processor)
    if not val_rows:
        n_val = max(1, int(len(prompts.rows) * recipe.grpo.verl.val_fraction)) if recipe.grpo.verl.val_fraction \
            else min(16, len(prompts.rows))
        val_rows = prompts.rows[:n_val]
    val_file = write_parquet(val_rows, out / "val.parquet", recipe.data)
    cfg = build_config(recipe, train_file.resolve(), val_file.resolve())
    config_path = write_config(cfg, out)
    return config_path, command(recipe, config_path)


def run(recipe: Recipe, flags: list[str], decontamination: dict | None = None) -> int:
    """``--dry-run``: write everything and print the command. Otherwise also run it (needs GPUs)."""
    config_path, cmd = prepare(recipe, decontamination)
    printable = " ".join(shlex.quote(c) for c in cmd)
    print(f"verl config: {config_path}")
    print(f"command: {printable}")
    if "--dry-run" in flags:
        return 0
    python = verl_python(recipe)
    if not python.exists():
        raise VerlBackendError(f"verl's environment is missing ({python}): run scripts/verl/setup_env.sh "
                               "(or set grpo.verl.python to the python of an environment with verl==0.9.1)")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    if recipe.grpo.ray_address:
        env["RAY_ADDRESS"] = recipe.grpo.ray_address
    sys.stdout.flush()
    return subprocess.call(cmd, env=env, cwd=recipe.train.output_dir)
