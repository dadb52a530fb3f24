"""The run skeleton SFT and GRPO share (train/run.py): one block of common Trainer arguments and one list of
user errors, so the two launchers cannot drift apart again. No training here (fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fixtures_grpo import grpo_recipe, write_bench_source


def _ctx(run_dir: Path):
    import torch

    from train.run import RunContext

    return RunContext(rank=0, world=1, device="cpu", dtype=torch.float32, run_dir=run_dir, report_to=[],
                      resume_from=None)


def test_sft_and_grpo_arguments_agree_on_every_common_key(tmp_path):
    """The keys that drifted before (dataloader_num_workers, gradient_checkpointing) included, with non-default
    values so a trainer that ignored the recipe would show; warmup_ratio reaches the Trainer as a ratio."""
    from rewards.grpo import reward_weights
    from train.grpo.trl_backend import grpo_arguments
    from train.recipe import load_recipe
    from train.run import training_kwargs
    from train.sft import training_arguments

    recipe = load_recipe("quickstart_grpo", [
        f"train.output_dir={tmp_path}", "train.max_steps=40", "data.num_workers=2", "model.gradient_checkpointing=true",
        "optim.warmup_ratio=0.1", "optim.scheduler=linear", "optim.weight_decay=0.01", "train.save_steps=7"])
    ctx = _ctx(tmp_path)
    sft = training_arguments(recipe, ctx, recipe.train.max_steps)
    grpo = grpo_arguments(recipe, ctx, False, reward_weights(recipe.reward))
    common = training_kwargs(recipe, ctx, recipe.train.max_steps)
    assert {"dataloader_num_workers", "gradient_checkpointing", "warmup_steps", "deepspeed"} <= set(common)
    for key in common:
        assert getattr(sft, key) == getattr(grpo, key), key
    assert sft.dataloader_num_workers == 2 and sft.gradient_checkpointing is True
    assert sft.lr_scheduler_type == grpo.lr_scheduler_type == "linear" and sft.save_steps == 7
    # transformers reads a float warmup_steps below 1 as the share of the total steps: 10% of 40 steps.
    assert sft.get_warmup_steps(40) == grpo.get_warmup_steps(40) == 4
    # SFT's own keys: it restores its data position itself.
    assert sft.ignore_data_skip is True and grpo.ignore_data_skip is False
    # vLLM's context is the prompt budget plus the completion (issue 27: not the model's 128,000 positions).
    assert grpo.vllm_max_model_length == recipe.grpo.max_prompt_length + recipe.grpo.max_completion_length == 1088


@pytest.mark.parametrize("launcher", ["sft", "grpo"])
def test_both_launchers_print_the_same_user_errors_as_one_line(launcher, tmp_path, capsys):
    """A missing checkpoint (train.resume) stops SFT and GRPO alike: one line naming the key, exit 1, no
    traceback (GRPO used to print a traceback for the error types only SFT listed)."""
    src = write_bench_source(tmp_path / "data", n=2)
    missing = tmp_path / "no_such_checkpoint"
    recipe = grpo_recipe(tmp_path / "data", src, [f"train.output_dir={tmp_path / 'run'}", "train.max_steps=1",
                                                  f"train.resume={missing}"])
    if launcher == "sft":
        from train.sft import run_cli

        code = run_cli(recipe, [])
    else:
        from train.grpo.backends import run

        code = run(recipe, [])
    err = capsys.readouterr().err
    assert code == 1
    line = next(x for x in err.splitlines() if "error:" in x)
    assert line == f"launch/{launcher}.py: error: train.resume={str(missing)!r}: no such checkpoint directory"
    assert "Traceback" not in err


def test_user_errors_hold_every_type_either_launcher_named():
    from data_mix.badsample import BadSample, TooManyBadSamples
    from data_mix.plan import PlanError
    from data_mix.registry import RegistryError
    from data_mix.rowfiles import DataFileError
    from train.checkpoint import CheckpointError
    from train.grpo.dataset import GRPODataError
    from train.grpo.prompts import PromptError
    from train.grpo.verl_backend import VerlBackendError
    from train.model_loading import ModelLoadError
    from train.run import user_errors

    named = {BadSample, TooManyBadSamples, PlanError, RegistryError, DataFileError, CheckpointError, GRPODataError,
             PromptError, VerlBackendError, ModelLoadError}
    assert named <= set(user_errors())
    assert not any(issubclass(ValueError, e) or e in (Exception, RuntimeError, OSError) for e in user_errors())


def test_each_run_of_a_process_logs_to_its_own_directory_unless_the_user_chose_one(tmp_path, monkeypatch):
    """Two in-process runs (a test session, an in-process sweep): the second's tensorboard and wandb files go
    to its own run directory, not the first's; a directory the user set in the environment always wins."""
    import os

    from train import callbacks

    for key in ("TENSORBOARD_LOGGING_DIR", "WANDB_DIR"):  # restored as they were after the test
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    monkeypatch.setattr(callbacks, "_SET_HERE", {})
    monkeypatch.setenv("WANDB_MODE", "offline")
    for run in ("a", "b"):
        assert callbacks.hf_report_to(["tensorboard", "wandb", "jsonl"], tmp_path / run) == ["tensorboard", "wandb"]
        assert os.environ["TENSORBOARD_LOGGING_DIR"] == str(tmp_path / run / "tensorboard")
        assert os.environ["WANDB_DIR"] == str(tmp_path / run)
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", "/mine/tb")
    callbacks.hf_report_to(["tensorboard"], tmp_path / "c")
    assert os.environ["TENSORBOARD_LOGGING_DIR"] == "/mine/tb"
