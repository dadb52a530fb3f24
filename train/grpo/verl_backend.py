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


MISSING_ENV = ("verl's environment is missing ({python}): create it with `bash scripts/verl/setup_env.sh` (about "
               "5 minutes; or set grpo.verl.python to the python of an environment with verl==0.9.1)")


class VerlBackendError(RuntimeError):
    """The verl run cannot be prepared or started; the message says why and what to do."""


def verl_dir(recipe: Recipe) -> Path:
    return Path(recipe.train.output_dir) / "verl"


def verl_python(recipe: Recipe) -> Path:
    path = Path(recipe.grpo.verl.python)
    return path if path.is_absolute() else REPO_ROOT / path


def reward_kwargs(recipe: Recipe, opened: str = "") -> dict[str, Any]:
    """What the reward adapter receives besides the sample: the recipe's reward section as plain data, with
    ``reward.length_unit=tokens`` the policy's tokenizer (the model path) to count lengths as TRL does, and the
    think block the prompts leave open (``opened``, read before each response as the TRL path does)."""
    kwargs: dict[str, Any] = {"reward_config": dataclasses.asdict(recipe.reward)}
    if opened:
        kwargs["opened"] = opened
    if recipe.reward.length_unit == "tokens":
        kwargs["tokenizer"] = _resolved_model_path(recipe.model.name_or_path)
    return kwargs


def chat_template_kwargs(name_or_path: str, thinking: bool = False) -> dict[str, Any]:
    """The model family's template arguments with the prompts' thinking switch (``prompt_thinking``; Qwen3.5:
    ``enable_thinking``), for verl's ``data.apply_chat_template_kwargs``; {} (with a warning) when the checkpoint's
    config.json cannot be read here."""
    from train.models import UnsupportedFamily, family_for_checkpoint

    try:
        return family_for_checkpoint(name_or_path).chat_template_kwargs(thinking=thinking)
    except UnsupportedFamily as exc:  # e.g. a hub id not in the local cache
        log.warning("data.apply_chat_template_kwargs left at verl's default: %s", exc)
        return {}


def _resolved_model_path(name_or_path: str) -> str:
    from train.model_loading import resolve_model_path

    path = resolve_model_path(name_or_path)
    return str(Path(path).resolve()) if Path(path).exists() else path


def uncarried(recipe: Recipe) -> list[str]:
    """What the recipe asks for that the verl config cannot express: one line per recipe key (empty when all is
    carried), derived from the key table (train/keys.py: every key whose verl mapping is ``unsupported``).
    :func:`build_config` logs each as a warning; docs/KEYS.md lists them."""
    from train.key_backends import uncarried as by_table

    return by_table(recipe, "verl")


def refuse_several_processes() -> None:
    """verl starts its own workers on Ray from one process: under torchrun / accelerate every rank would start
    its own verl run."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world > 1:
        raise VerlBackendError(
            f"grpo.backend=verl runs from one process (this is one of WORLD_SIZE={world}): start it once with "
            "`python launch/grpo.py recipe=... grpo.backend=verl`, not under torchrun or accelerate; verl starts "
            "its workers on Ray (grpo.verl.nnodes, grpo.verl.gpus_per_node, grpo.ray_address)")


def verl_has_flash_attn(recipe: Recipe) -> bool:
    """Whether flash_attn is importable in verl's environment (``grpo.verl.python``); False when it is missing."""
    python = verl_python(recipe)
    if not python.exists():
        return False
    probe = "import importlib.util, sys; sys.exit(0 if importlib.util.find_spec('flash_attn') else 1)"
    return subprocess.run([str(python), "-c", probe], capture_output=True, timeout=120).returncode == 0


def attention_keys(flash_attn: bool) -> dict[str, Any]:
    """verl's actor model keys for the attention installed in its environment. verl 0.9.1 defaults to
    flash_attention_2 and its Qwen2-VL remove-padding patch imports flash_attn: without flash-attn (e.g. a
    machine where scripts/verl/setup_env.sh found no GPU) the actor runs sdpa on padded batches instead."""
    if flash_attn:
        return {"use_remove_padding": True}
    return {"use_remove_padding": False, "override_config": {"attn_implementation": "sdpa"}}


def build_config(recipe: Recipe, train_file: Path, val_file: Path, flash_attn: bool | None = None,
                 opened: str = "") -> dict[str, Any]:
    """The verl config (as a dict) for ``recipe``: verl's ppo_trainer defaults + these keys. Every recipe key it
    cannot carry is logged here, once (:func:`uncarried`). ``flash_attn``: whether verl's environment has
    flash-attn (None: look it up, :func:`verl_has_flash_attn`). ``opened``: the think block the prompts leave open
    (``ModelFamily.think_prefix``), for the reward adapter."""
    from train.grpo.prompts import prompt_thinking

    g, v, t, o, m = recipe.grpo, recipe.grpo.verl, recipe.train, recipe.optim, recipe.model
    if flash_attn is None:
        flash_attn = verl_has_flash_attn(recipe)
    log.info("verl attention: %s", "flash_attention_2 with remove-padding (flash-attn installed in verl's "
             "environment)" if flash_attn else "sdpa, no remove-padding (flash-attn not in verl's environment)")
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
                **attention_keys(flash_attn),
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
                                       "reward_kwargs": reward_kwargs(recipe, opened)},
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
    template_kwargs = chat_template_kwargs(m.name_or_path, prompt_thinking(recipe.grpo))
    if template_kwargs:  # verl's RLHFDataset renders the prompts with these, as the TRL path and the counts do
        cfg["data"]["apply_chat_template_kwargs"] = template_kwargs
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
    from train.grpo.prompts import prompt_thinking
    from train.grpo.verl_export import write_parquet
    from train.model_loading import load_processor
    from train.models import family_for_processor
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
    opened = family_for_processor(processor).think_prefix(processor, prompt_thinking(recipe.grpo))
    cfg = build_config(recipe, train_file.resolve(), val_file.resolve(), opened=opened)
    config_path = write_config(cfg, out)
    return config_path, command(recipe, config_path)


def run(recipe: Recipe, flags: list[str], decontamination: dict | None = None) -> int:
    """``--dry-run``: write everything and print the command. Otherwise also run it (needs GPUs)."""
    config_path, cmd = prepare(recipe, decontamination)
    printable = " ".join(shlex.quote(c) for c in cmd)
    print(f"verl config: {config_path}")
    print(f"command: {printable}")
    python = verl_python(recipe)
    if "--dry-run" in flags:
        if not python.exists():
            print(f"note: {MISSING_ENV.format(python=python)}")
        return 0
    if not python.exists():
        raise VerlBackendError(MISSING_ENV.format(python=python))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    if recipe.grpo.ray_address:
        env["RAY_ADDRESS"] = recipe.grpo.ray_address
    sys.stdout.flush()
    return subprocess.call(cmd, env=env, cwd=recipe.train.output_dir)
