"""Exact resume after SIGKILL (mid-training and mid-save), pre-emption by SIGTERM/SIGUSR1, full disk,
retention, metrics, and the final plain Hugging Face directory. fp32, CPU, tiny model."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from sft_child import train_zoo

from train import checkpoint as ckpt

pytestmark = pytest.mark.slow  # trains and kills SFT runs; make test runs it, make test-quick does not

CHILD = Path(__file__).resolve().parent / "sft_child.py"


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_file(str(run_dir / "model.safetensors"))


def assert_same_weights(a: Path, b: Path) -> None:
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        assert torch.equal(wa[key], wb[key]), key


def start_child(out: Path, zoo: Path, *extra: str, sleep: float = 0.15) -> subprocess.Popen:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    log = open(out.parent / f"{out.name}.log", "w")
    return subprocess.Popen([sys.executable, str(CHILD), str(out), str(zoo), "--sleep", str(sleep), *extra],
                            stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_for(pred, proc: subprocess.Popen, timeout: float = 240.0) -> None:
    deadline = time.time() + timeout
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f"child exited with {proc.returncode} before the condition held")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError("timed out waiting for the child")
        time.sleep(0.02)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("zoo")


@pytest.fixture(scope="module")
def reference(tmp_path_factory, zoo) -> Path:
    """The uninterrupted run every interrupted one must match."""
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("ref") / "run"
    assert train_zoo(out, zoo) == 0
    return out


def test_uninterrupted_run_leaves_a_plain_hf_directory(reference):
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(reference)
    processor = AutoProcessor.from_pretrained(reference)
    assert type(processor).__name__ == "Qwen2_5_VLProcessor" and processor.chat_template
    assert model.config.model_type == "qwen2_5_vl"
    # vision tower frozen: bit-identical to the start; merger and language model trained
    from train.tiny import ensure_tiny

    start, end = load_file(str(ensure_tiny() / "model.safetensors")), weights(reference)
    vision = [k for k in start if k.startswith("visual.") and ".merger." not in k]
    assert vision and all(torch.equal(start[k], end[k]) for k in vision)
    assert any(not torch.equal(start[k], end[k]) for k in start if ".merger." in k)
    assert all(not torch.equal(start[k], end[k]) for k in start if k.startswith(("model.", "lm_head")))
    # every save step produced a complete checkpoint; metrics have the promised keys
    assert [ckpt.checkpoint_step(p) for p in ckpt.complete_checkpoints(reference)] == [2, 4, 6, 8]
    rows = [json.loads(line) for line in (reference / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "train/loss" in r]
    assert [r["step"] for r in steps] == list(range(1, 9))
    for key in ("train/lr", "train/grad_norm", "train/tokens_per_s", "train/nonpad_fraction", "train/lr_projector"):
        assert all(key in r for r in steps), key
    assert all(0 < r["train/nonpad_fraction"] <= 1 for r in steps)
    assert steps[-1]["train/loss"] < steps[0]["train/loss"]
    assert json.loads((reference / "train_summary.json").read_text())["steps"] == 8
    assert (reference / "run_info.json").is_file() and (reference / "recipe.yaml").is_file()
    card = (reference / "README.md").read_text()  # the model card names the base model and the recipe
    assert "base_model: tiny-qwen2.5-vl" in card and "[None]" not in card


def test_sigkill_then_the_same_command_resumes_keeps_every_checkpoint_and_matches(tmp_path, zoo, reference):
    """kill -9 mid-run, then the SAME command (no train.resume: the default is auto): resumed from the newest
    complete checkpoint, every checkpoint of the killed run kept (retention of 1 deletes only what the resumed
    run wrote), metrics.jsonl one row per step, final weights bit-identical to the uninterrupted run."""
    out = tmp_path / "run"
    keep = "train.save_total_limit=1"
    proc = start_child(out, zoo, keep)
    wait_for(lambda: ckpt.is_complete(out / "checkpoint-4"), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (out / "model.safetensors").exists(), "the child finished before it was killed"
    latest = ckpt.latest_complete(out)
    assert latest is not None and ckpt.checkpoint_step(latest) >= 4
    killed_run = sorted(p.name for p in ckpt.complete_checkpoints(out))
    assert train_zoo(out, zoo, [keep]) == 0
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["resumed_from"] == str(latest)
    assert_same_weights(out, reference)
    now = sorted(p.name for p in ckpt.complete_checkpoints(out))
    assert set(killed_run) <= set(now) and "checkpoint-8" in now, (killed_run, now)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "train/loss" in r] == list(range(1, 9))  # one series, continued


def test_crash_mid_save_is_never_resumed_from(tmp_path, zoo, reference):
    out = tmp_path / "run"
    proc = start_child(out, zoo, "--crash-publishing", "6", sleep=0.0)
    proc.wait(timeout=240)
    assert proc.returncode == -signal.SIGKILL
    assert (out / "checkpoint-6").is_dir() and not ckpt.is_complete(out / "checkpoint-6")
    assert ckpt.latest_complete(out) == out / "checkpoint-4"
    assert train_zoo(out, zoo, ["train.resume=auto"]) == 0
    assert json.loads((out / "train_summary.json").read_text())["resumed_from"] == str(out / "checkpoint-4")
    assert ckpt.is_complete(out / "checkpoint-6")  # rewritten by the resumed run
    assert_same_weights(out, reference)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1])
def test_preemption_saves_and_exits_zero(tmp_path, zoo, reference, sig):
    out = tmp_path / "run"
    proc = start_child(out, zoo, "train.save_steps=100")  # no periodic saves: the signal makes the only one
    wait_for(lambda: (out / "metrics.jsonl").is_file() and
             sum(1 for _ in (out / "metrics.jsonl").open()) >= 2, proc)
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == 0
    saved = ckpt.complete_checkpoints(out)
    assert len(saved) == 1 and 2 <= ckpt.checkpoint_step(saved[0]) < 8
    assert not (out / "model.safetensors").exists()  # not a final model: training did not finish
    assert "share your model" not in (out.parent / f"{out.name}.log").read_text()
    if sig == signal.SIGTERM:  # resuming one of them is enough to prove the checkpoint is whole
        assert train_zoo(out, zoo, ["train.resume=auto", "train.save_steps=100"]) == 0
        assert_same_weights(out, reference)


def test_retention_keeps_newest(tmp_path, zoo):
    out = tmp_path / "run"
    assert train_zoo(out, zoo, ["train.max_steps=6", "train.save_total_limit=2"]) == 0
    assert sorted(p.name for p in out.glob("checkpoint-*")) == ["checkpoint-4", "checkpoint-6"]
    assert not (out / ckpt.STAGING).exists()


def test_full_disk_keeps_previous_checkpoint(tmp_path, zoo):
    mnt = tmp_path / "small"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=10m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"SKIPPED LOUDLY: cannot mount a small tmpfs here (needs root): {res.stderr.strip()}")
    try:
        out = mnt / "run"
        with pytest.raises(ckpt.CheckpointError) as err:
            train_zoo(out, zoo, ["train.max_steps=4"])
        msg = str(err.value)
        assert "disk full while saving checkpoint-4" in msg and "checkpoint-2" in msg
        assert ckpt.latest_complete(out) == out / "checkpoint-2"
        assert not (out / "checkpoint-4").exists() and not (out / ckpt.STAGING / "checkpoint-4").exists()
        # the kept checkpoint is whole: it loads
        from transformers import AutoModelForImageTextToText

        del AutoModelForImageTextToText.from_pretrained(out / "checkpoint-2").config
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)  # lazy: mmapped weights may still be open
        shutil.rmtree(mnt, ignore_errors=True)


def test_resume_discovery_ignores_incomplete(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        if complete:
            ckpt.atomic_write_json(d / ckpt.MARKER, {"step": step})
    (tmp_path / ckpt.STAGING / "checkpoint-8").mkdir(parents=True)
    assert ckpt.latest_complete(tmp_path) == tmp_path / "checkpoint-4"
    assert ckpt.resolve_resume("never", tmp_path) is None
    assert ckpt.resolve_resume("auto", tmp_path / "nothing") is None
    with pytest.raises(ckpt.CheckpointError, match="no COMPLETE marker"):
        ckpt.resolve_resume(str(tmp_path / "checkpoint-6"), tmp_path)
