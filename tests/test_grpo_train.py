"""GRPO training on CPU with the tiny model: the launcher end to end (checkpoint + per-level metrics),
and the learning proof (accuracy reward rises; auto-think shortens L1 and keeps L3's think blocks).

The learning proof starts from a short SFT with the SFT trainer (train/quickstart_rl.py: the quickstart SFT
recipe on think-format targets, L3 always reasons in <think>, L1 half the time; a session fixture shared with
tests/test_demo_grpo.py), then runs recipe quickstart_grpo twice from that model on the same engine prompts:
reward.mode=auto_think and reward.mode=think. Only the reward differs. SFT and GRPO prompts are different
engine rows, so the SFT teaches the format and GRPO has answers left to learn.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_grpo import shared_rl_standin, shared_think_sft

pytestmark = pytest.mark.slow  # trains GRPO on the tiny model (session fixtures of minutes); make test runs it, make test-quick does not

REPO = Path(__file__).resolve().parents[1]


def _metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if '"train/reward"' in line]


def _mean(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if key in r]
    assert values, f"no {key} in the metrics"
    return statistics.mean(values)


@pytest.fixture(scope="module")
def standin(tmp_path_factory) -> Path:
    return shared_rl_standin(tmp_path_factory)


# ---------------------------------------------------------------------------- the launcher end to end

def test_launcher_trains_saves_a_loadable_model_and_per_level_metrics(standin, tmp_path):
    """The issue's check: launch/grpo.py recipe=auto_think ... train.max_steps=3 (bench evaluation off and short
    completions here, for time)."""
    out = tmp_path / "run"
    cmd = [sys.executable, str(REPO / "launch" / "grpo.py"), "recipe=auto_think", "model.name_or_path=tiny-qwen2.5-vl",
           f"data.root={standin}", "train.max_steps=3", f"train.output_dir={out}", "eval.bench=null", "data.decontaminate=off",
           "grpo.max_completion_length=16", "train.per_device_batch_size=8", "grpo.num_generations=4",
           "train.grad_accum=1", "train.logging_steps=1", "train.num_threads=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    for name in ("config.json", "model.safetensors", "processor_config.json", "recipe.yaml", "run_info.json",
                 "train_summary.json", "rollouts.jsonl", "report.html"):
        assert (out / name).is_file(), name
    rows = _metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2, 3]
    seen = set()
    for r in rows:
        for lv in ("L1", "L2", "L3", "L4"):
            if f"train/{lv}/reward" in r:
                seen.add(lv)
                for key in ("completion_length", "think_fraction", "truncated_fraction", "rewards/accuracy",
                            "rewards/format", "rewards/length", "rewards/reasoning"):
                    assert f"train/{lv}/{key}" in r, (lv, key)
                assert 1 <= r[f"train/{lv}/completion_length"] <= 16
    assert len(seen) >= 2  # 2 prompts per step from 4 levels: at least two levels over three steps
    summary = json.loads((out / "train_summary.json").read_text())
    # auto_think trains on multiple-choice answers only (reward.accuracy=mcq_only, the paper's Limitations): the
    # stand-in's L1 has 75 MCQ prompts of 100, its L4 none (docs/GRPO.md)
    assert summary["steps"] == 3 and summary["levels"] == {"L1": 75, "L2": 100, "L3": 100}

    # The saved model loads as the next stage's model.name_or_path and generates.
    check = ("import sys, torch; from train.config import ModelConfig; from train.model_loading import load_model, "
             "load_processor; m = ModelConfig(name_or_path=sys.argv[1]); model = load_model(m, 'cpu'); "
             "p = load_processor(m); ids = p.tokenizer('<answer>', return_tensors='pt'); "
             "print(model.generate(**ids, max_new_tokens=2).shape[1])")
    loaded = subprocess.run([sys.executable, "-c", check, str(out)], capture_output=True, text=True, cwd=REPO,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert loaded.returncode == 0, loaded.stderr[-2000:]


# ---------------------------------------------------------------------------- the learning proof

@pytest.fixture(scope="module")
def learning_setup(tmp_path_factory):
    """(registry with the GRPO prompt sources learn_l1 / learn_l3, think-format SFT model directory): 8 GRPO
    prompts per level (every step sees all 16, 4 completions each), 32 other SFT prompts per level."""
    _, registry, sft_dir = shared_think_sft(tmp_path_factory)
    return registry, sft_dir


def _grpo_runs(standin: Path, registry: Path, sft_dir: Path, work: Path) -> dict[str, list[dict]]:
    """recipe=quickstart_grpo with reward.mode auto_think and think, as two launcher processes side by side
    (one thread each: the two cores of the test machine)."""
    procs = {}
    for mode in ("auto_think", "think"):
        out = work / mode
        cmd = [sys.executable, str(REPO / "launch" / "grpo.py"), "recipe=quickstart_grpo",
               f"model.name_or_path={sft_dir}", f"data.root={standin}", f"data.registry={registry}",
               "mix.groups.rl.sources=[learn_l1,learn_l3]", f"train.output_dir={out}", f"reward.mode={mode}",
               "eval.bench=null", "data.decontaminate=off", "train.report_to=[jsonl]"]
        log = open(work / f"{mode}.log", "w")
        procs[mode] = (out, log, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                                                  env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}))
    rows = {}
    for mode, (out, log, proc) in procs.items():
        assert proc.wait(timeout=1200) == 0, (work / f"{mode}.log").read_text()[-4000:]
        log.close()
        rows[mode] = _metrics(out / "metrics.jsonl")
    return rows


@pytest.mark.slow
def test_grpo_raises_accuracy_and_auto_think_shortens_l1_but_keeps_l3_thinking(standin, learning_setup, tmp_path):
    registry, sft_dir = learning_setup
    runs = _grpo_runs(standin, registry, sft_dir, tmp_path)
    auto, think = runs["auto_think"], runs["think"]
    assert len(auto) == len(think) == 30
    first, last = slice(0, 5), slice(-5, None)
    keys = ("train/rewards/accuracy/mean", "train/rewards/format/mean", "train/L1/completion_length",
            "train/L1/think_fraction", "train/L3/think_fraction", "train/L3/completion_length")
    print(json.dumps({mode: {k: [round(r[k], 2) for r in rows if k in r] for k in keys} for mode, rows in runs.items()}))

    # Every step scores all 16 prompts (4 completions each): the first and last steps see the same prompts.
    acc = "train/rewards/accuracy/mean"
    assert _mean(auto[last], acc) >= _mean(auto[first], acc) + 0.1
    assert _mean(think[last], acc) >= _mean(think[first], acc) + 0.05
    # auto-think: L1 completions end clearly shorter than with the think reward, and shorter than they started ...
    l1_auto, l1_think = _mean(auto[last], "train/L1/completion_length"), _mean(think[last], "train/L1/completion_length")
    assert l1_auto < 0.6 * l1_think
    assert l1_auto < _mean(auto[first], "train/L1/completion_length")
    assert _mean(auto[last], "train/L1/think_fraction") < 0.2
    assert _mean(think[last], "train/L1/think_fraction") >= 0.5
    # ... while L3 keeps its think blocks.
    assert _mean(auto[last], "train/L3/think_fraction") >= 0.8


def test_lora_with_a_kl_term_trains_adapters_only_and_saves_a_merged_model(standin, learning_setup, tmp_path):
    """LoRA on the language model (vision frozen) with beta > 0 from the SFT model: the reference policy is the
    model with the adapters disabled; the final directory holds the merged model."""
    import torch

    from train.config import ModelConfig
    from train.grpo import run
    from train.model_loading import load_model
    from train.recipe import load_recipe

    registry, sft_dir = learning_setup
    out = tmp_path / "run"
    recipe = load_recipe("quickstart_grpo", [
        f"model.name_or_path={sft_dir}", f"data.root={standin}", f"data.registry={registry}",
        "mix.groups.rl.sources=[learn_l1,learn_l3]", f"train.output_dir={out}", "eval.bench=null", "data.decontaminate=off",
        "train.report_to=[jsonl]", "train.max_steps=3", "train.per_device_batch_size=16", "grpo.beta=0.04",
        "model.lora.enabled=true", "model.lora.r=4", "model.lora.target_modules=[q_proj,v_proj]", "optim.lr=5e-4"])
    before = load_model(ModelConfig(name_or_path=str(sft_dir)), "cpu").state_dict()
    assert run(recipe, []) == 0
    rows = _metrics(out / "metrics.jsonl")
    assert len(rows) == 3 and rows[0]["train/kl"] == 0.0 and 0.0 < rows[-1]["train/kl"] < 0.1  # moved away from the reference
    after = load_model(ModelConfig(name_or_path=str(out)), "cpu").state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert any(".q_proj." in k for k in changed) and any(".v_proj." in k for k in changed)  # merged adapters
    assert not any(k.startswith("model.visual.") and ".merger." not in k for k in changed)  # vision frozen
    assert not any(".k_proj." in k or ".o_proj." in k or ".mlp." in k for k in changed if "visual" not in k)
    assert json.loads((out / "lora.json").read_text())["merged"] is True


@pytest.mark.dist
def test_deepspeed_zero3_with_a_kl_term_on_two_processes(standin, learning_setup, tmp_path):
    """torchrun, 2 CPU processes, ZeRO-3, beta > 0 (a reference model under ZeRO-3: DeepSpeed's gloo process
    group is set up first); checkpoints are complete and the gathered final model loads."""
    registry, sft_dir = learning_setup
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29513",
           str(REPO / "launch" / "grpo.py"), "recipe=quickstart_grpo", f"model.name_or_path={sft_dir}",
           f"data.root={standin}", f"data.registry={registry}", "mix.groups.rl.sources=[learn_l1,learn_l3]",
           f"train.output_dir={out}", "eval.bench=null", "data.decontaminate=off", "train.report_to=[jsonl]", "train.max_steps=2",
           "train.per_device_batch_size=8", "train.deepspeed=zero3", "grpo.beta=0.04", "train.save_steps=1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu"})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Detected DeepSpeed ZeRO-3" in proc.stdout + proc.stderr
    rows = _metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2] and rows[0]["train/kl"] == 0.0 and rows[1]["train/kl"] > 0.0
    assert (out / "checkpoint-2" / "COMPLETE").is_file() and (out / "checkpoint-1" / "COMPLETE").is_file()
    check = ("import sys; from train.config import ModelConfig; from train.model_loading import load_model; "
             "m = load_model(ModelConfig(name_or_path=sys.argv[1]), 'cpu'); print(sum(p.numel() for p in m.parameters()))")
    loaded = subprocess.run([sys.executable, "-c", check, str(out)], capture_output=True, text=True, cwd=REPO,
                            timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert loaded.returncode == 0 and int(loaded.stdout.split()[-1]) > 100_000, loaded.stderr[-2000:]
