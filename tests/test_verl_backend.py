"""The verl backend: parquet conversion, the written config loaded by verl's own config code, and verl's
reward manager scoring our parquet through rewards/verl_reward.py exactly like the TRL reward functions.

verl 0.9.1 lives in its own environment (.venv-verl, scripts/verl/setup_env.sh). The tests that need it
create or complete it when needed (about 5 minutes from nothing on 2 cores, once) and run verl in subprocesses.
verl's training itself needs GPUs (vLLM/SGLang rollouts) and is not run here. Every metricfunc at every level
through verl's RLHFDataset and reward manager: tests/test_verl_parity.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_grpo import grpo_recipe, write_bench_source
from fixtures_verl import score_both_ways, verl_env

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow  # creates or completes .venv-verl (minutes) and runs verl in subprocesses


@pytest.fixture(scope="module")
def verl_python() -> Path:
    """verl's interpreter; scripts/verl/setup_env.sh creates or completes the environment when needed."""
    return verl_env()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A dry run of the verl backend over hand-made bench rows (L1 and L3, 1-3 images each)."""
    from train.grpo import verl_backend

    root = tmp_path_factory.mktemp("verl")
    src = write_bench_source(root, n=6, levels=["L1", "L3", "L1", "L3", "L1", "L1"])
    recipe = grpo_recipe(root, src, [f"train.output_dir={root / 'run'}", "grpo.backend=verl", "grpo.num_generations=4",
                                     "grpo.beta=0.01", "grpo.verl.gpus_per_node=2",
                                     "train.per_device_batch_size=4", "train.grad_accum=2", "train.max_steps=7",
                                     "grpo.ray_address=10.0.0.1:6379"])
    assert verl_backend.run(recipe, ["--dry-run"]) == 0
    out = root / "run" / "verl"
    return recipe, out


def test_every_recipe_key_verl_cannot_carry_is_warned_at_config_time(tmp_path, caplog):
    """build_config logs exactly the lines the key table derives (tests/test_keys.py walks every key)."""
    import logging

    from train.grpo import verl_backend

    src = write_bench_source(tmp_path, n=2)
    recipe = grpo_recipe(tmp_path, src, ["grpo.backend=verl", "eval.bench=null", "data.decontaminate=off", "model.freeze.projector=true",
                                         "model.freeze.llm=true", "optim.scheduler=linear", "train.deepspeed=zero2"])
    lines = verl_backend.uncarried(recipe)
    assert {"model.freeze.projector", "model.freeze.llm", "optim.scheduler", "train.deepspeed"} <= {
        line.split("=")[0] for line in lines}
    with caplog.at_level(logging.WARNING, logger=verl_backend.log.name):
        cfg = verl_backend.build_config(recipe, tmp_path / "train.parquet", tmp_path / "val.parquet")
    warned = [r.getMessage() for r in caplog.records if "cannot carry" in r.getMessage()]
    assert warned == [f"grpo.backend=verl cannot carry {line}" for line in lines]
    assert cfg["actor_rollout_ref"]["actor"]["optim"]["lr_scheduler_type"] == "constant"


def test_parquet_rows_follow_verls_schema(exported):

    from train.grpo.verl_export import read_parquet

    recipe, out = exported
    rows = read_parquet(out / "train.parquet")
    assert len(rows) == 6
    for row in rows:
        assert set(row) == {"data_source", "prompt", "images", "ability", "reward_model", "extra_info"}
        level = row["extra_info"]["level"]
        assert row["data_source"] == f"spatialtree/{level}"
        assert row["ability"].startswith(level + "/")
        (user,) = row["prompt"]
        assert user["role"] == "user" and isinstance(user["content"], str)
        assert user["content"].count("<image>") == len(row["images"]) >= 1
        assert user["content"].startswith("<image>")  # placeholders stay where the sample had them
        assert all(Path(im["image"]).is_absolute() and Path(im["image"]).is_file() for im in row["images"])
        for im in row["images"]:  # the size the project's processor gives it (56x56 images stay 56x56)
            assert (im["resized_height"], im["resized_width"]) == (56, 56) and "max_pixels" not in im
        assert row["reward_model"]["style"] == "rule" and row["reward_model"]["ground_truth"] in ("A", "B")
        extra = row["extra_info"]
        assert extra["metricfunc"] == "multichoiceeval"
        assert json.loads(extra["metric_extra"])["option"] == ["A. the red box", "B. the blue box"]
        assert extra["where"].split(":")[0].endswith("mine.jsonl")
    assert sorted(r["extra_info"]["index"] for r in rows) == list(range(6))
    assert len(read_parquet(out / "val.parquet")) == 6  # no bench: validation on (up to 16) training prompts


def test_written_config_says_what_the_recipe_says(exported):
    from omegaconf import OmegaConf

    recipe, out = exported
    cfg = OmegaConf.load(out / "grpo_verl.yaml")
    assert list(cfg.defaults) == ["ppo_trainer", "_self_"]
    arr = cfg.actor_rollout_ref
    assert arr.actor.freeze_vision_tower is True
    assert arr.rollout.n == 4 and cfg.algorithm.adv_estimator == "grpo"
    assert arr.actor.use_kl_loss is True and arr.actor.kl_loss_coef == 0.01
    assert arr.actor.clip_ratio_low == 0.2 and arr.actor.clip_ratio_high == 0.2
    assert arr.actor.loss_agg_mode == "token-mean"  # dapo
    assert cfg.data.train_batch_size == 4 * 2 * 2 // 4  # completions per step / group size
    assert cfg.trainer.total_training_steps == 7 and cfg.trainer.n_gpus_per_node == 2
    assert cfg.reward.custom_reward_function.path == str(REPO / "rewards" / "verl_reward.py")
    assert cfg.reward.custom_reward_function.reward_kwargs.reward_config.length_unit == "tokens"
    assert Path(cfg.reward.custom_reward_function.reward_kwargs.tokenizer).is_dir()  # the policy's tokenizer
    assert cfg.ray_kwargs.ray_init.address == "10.0.0.1:6379"
    assert Path(arr.model.path).is_dir()  # the tiny model's resolved directory


def test_dry_run_from_the_command_line_prints_the_command(tmp_path):
    src = write_bench_source(tmp_path, n=2)
    out = tmp_path / "run"
    cmd = [sys.executable, str(REPO / "launch" / "grpo.py"), f"data.root={tmp_path}",
           f"data.registry={tmp_path / 'registry.yaml'}", "mix.groups.rl.sources=[mine]", "recipe=auto_think",
           "model.name_or_path=tiny-qwen2.5-vl", "eval.bench=null", "data.decontaminate=off", f"train.output_dir={out}", "grpo.backend=verl",
           "--dry-run"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "-m verl.trainer.main_ppo" in proc.stdout and f"--config-path={out / 'verl'}" in proc.stdout
    assert "--config-name=grpo_verl" in proc.stdout
    assert (out / "verl" / "train.parquet").is_file() and (out / "recipe.yaml").is_file()
    assert src.is_file()


def test_verl_loads_the_written_config_with_its_own_config_code(exported, verl_python):
    _, out = exported
    proc = subprocess.run([str(verl_python), str(REPO / "scripts" / "verl" / "check_config.py"),
                           str(out / "grpo_verl.yaml")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout[proc.stdout.index("{"):])
    assert summary["dataclasses"] == {"algorithm": "AlgoConfig", "actor_rollout_ref.actor": "FSDPActorConfig",
                                      "actor_rollout_ref.rollout": "RolloutConfig",
                                      "actor_rollout_ref.model": "HFModelConfig"}
    assert summary["reward_manager"].endswith("NaiveRewardManager")
    assert summary["custom_reward_function"] == str(REPO / "rewards" / "verl_reward.py")
    assert summary["freeze_vision_tower"] is True and summary["rollout_n"] == 4
    assert summary["use_reference_policy"] is True  # beta > 0 -> KL loss against the reference


def test_verls_reward_manager_scores_our_parquet_like_the_trl_reward_functions(exported, verl_python, tmp_path):
    """The same completions scored twice: TRL's reward functions on the TRL dataset rows (weighted sum as TRL
    forms it) and verl's naive reward manager on the parquet rows through rewards/verl_reward.py."""
    from omegaconf import OmegaConf

    from train.grpo.verl_export import read_parquet

    recipe, out = exported

    # reward.length_unit=tokens (the default): verl's side counts with the tokenizer the export names
    tokenizer_path = OmegaConf.load(out / "grpo_verl.yaml").reward.custom_reward_function.reward_kwargs.tokenizer
    rows = read_parquet(out / "train.parquet")
    texts = ["<think>The red box is nearer to the camera than the blue box, so it is closer.</think><answer>{a}</answer>",
             "<answer>{a}</answer>", "<answer>{b}</answer>",
             "<think>" + "look at the boxes again " * 12 + "</think><answer>{a}</answer>",
             "answer: {a}", "<think>hmm</think>", ""]
    items = []
    for i, row in enumerate(rows):
        a = row["reward_model"]["ground_truth"]
        b = "B" if a == "A" else "A"
        for t in texts:
            items.append({"index": i, "completion": t.format(a=a, b=b)})
    verl_scores, _, per_func, totals = score_both_ways(verl_python, recipe, out, rows, items, tmp_path,
                                                        tokenizer=tokenizer_path, timeout=600)
    for i, (ours, theirs) in enumerate(zip(totals, verl_scores)):
        assert theirs["score"] == pytest.approx(ours, abs=1e-9), (items[i], theirs, ours)
        for k, name in enumerate(("accuracy", "format", "length", "reasoning")):
            assert theirs[name] == pytest.approx(per_func[k][i] or 0.0, abs=1e-9), (items[i], name)
    # The cases differ: the comparison is not between constants.
    assert len({round(t, 6) for t in totals}) >= 4
    assert min(s["length"] for s in verl_scores) < 0  # L1's length penalty, counted in tokens on both sides
    assert max(s["accuracy"] for s in verl_scores) == 1.0 and min(s["accuracy"] for s in verl_scores) == 0.0


def test_verl_attention_follows_what_its_environment_has(tmp_path):
    """Issue 27: verl 0.9.1 defaults to flash_attention_2 and its Qwen2-VL remove-padding patch imports flash_attn.
    Without flash-attn in verl's environment the written config asks for sdpa without remove-padding; with it,
    verl's flash path with remove-padding. An environment that does not exist has no flash-attn."""
    from train.grpo import verl_backend

    src = write_bench_source(tmp_path / "data", n=2)
    recipe = grpo_recipe(tmp_path / "data", src, ["grpo.backend=verl", f"grpo.verl.python={tmp_path / 'none' / 'python'}"])
    assert verl_backend.verl_has_flash_attn(recipe) is False
    model = verl_backend.build_config(recipe, tmp_path / "t.parquet", tmp_path / "v.parquet")["actor_rollout_ref"]["model"]
    assert model["use_remove_padding"] is False and model["override_config"] == {"attn_implementation": "sdpa"}
    model = verl_backend.build_config(recipe, tmp_path / "t.parquet", tmp_path / "v.parquet",
                                      flash_attn=True)["actor_rollout_ref"]["model"]
    assert model["use_remove_padding"] is True and "override_config" not in model
    assert model["enable_gradient_checkpointing"] == recipe.model.gradient_checkpointing
