"""Crashes, pre-emption and a full disk, through the real launcher (``launch/sft.py`` subprocesses) on the
real data path (data_mix's mixer over an on-disk LLaVA corpus, whose position is part of every checkpoint).

tests/test_sft_resume.py (the SFT engineer's) covers, with an in-memory sample list: SIGKILL after a complete
checkpoint, a self-inflicted kill between a checkpoint's rename and its COMPLETE marker, SIGTERM/SIGUSR1 at an
ordinary step, and a full disk in-process. This file covers the rest: an external SIGKILL while a checkpoint's
files sit in the staging directory, two kills in a row, a pre-emption signal that arrives during a checkpoint
save, and a full disk seen from the command line followed by the recovery once space is freed. Every
scenario ends with a resumed run whose final weights equal the uninterrupted run's, bit for bit."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from fixtures_reliability import launch_child, launch_sft, sft_overrides, write_corpus
from safetensors.torch import load_file

from train import checkpoint as ckpt

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("corpus")
    return root, write_corpus(root, n_good=24)


def args(corpus, out: Path, *extra: str) -> list[str]:
    return sft_overrides(corpus[0], corpus[1], out, *extra)


def tail(log: Path, n: int = 3000) -> str:
    return log.read_text()[-n:] if log.exists() else "(no log)"


def run_ok(corpus, out: Path, *extra: str) -> dict:
    log = out.parent / f"{out.name}-{len(list(out.parent.glob(out.name + '-*.log')))}.log"
    proc = launch_sft(args(corpus, out, *extra), log)
    assert proc.returncode == 0, tail(log)
    return json.loads((out / "train_summary.json").read_text())


def wait_for(pred, proc: subprocess.Popen, what: str, timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not pred():
        if proc.poll() is not None:
            raise AssertionError(f"the run exited ({proc.returncode}) before {what}")
        if time.time() > deadline:
            proc.kill()
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def steps_logged(out: Path) -> int:
    path = out / "metrics.jsonl"
    if not path.is_file():
        return 0
    return sum(1 for line in path.read_text().splitlines() if '"train/loss"' in line)


def assert_whole(checkpoint: Path) -> None:
    """A complete checkpoint loads: weights, optimizer, scheduler, trainer state and the data position."""
    assert ckpt.is_complete(checkpoint)
    assert load_file(str(checkpoint / "model.safetensors"))
    torch.load(checkpoint / "optimizer.pt", weights_only=False)
    torch.load(checkpoint / "scheduler.pt", weights_only=False)
    assert json.loads((checkpoint / "trainer_state.json").read_text())["global_step"] == ckpt.checkpoint_step(checkpoint)
    assert json.loads((checkpoint / "data_state_rank0.json").read_text())["source"]["position"] > 0


def assert_same_final_weights(out: Path, reference: Path) -> None:
    a, b = load_file(str(out / "model.safetensors")), load_file(str(reference / "model.safetensors"))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"{len(different)} tensors differ from the uninterrupted run, e.g. {different[:3]}"


@pytest.fixture(scope="module")
def reference(corpus, tmp_path_factory) -> Path:
    """The uninterrupted run (8 steps, checkpoints at 2, 4, 6, 8) every interrupted one must match."""
    out = tmp_path_factory.mktemp("reference") / "run"
    summary = run_ok(corpus, out)
    assert summary["steps"] == 8 and summary["resumed_from"] is None
    assert [ckpt.checkpoint_step(p) for p in ckpt.complete_checkpoints(out)] == [2, 4, 6, 8]
    return out


def test_sigkill_in_training_then_in_a_save_then_resume_matches(corpus, reference, tmp_path):
    out = tmp_path / "run"
    # 1. SIGKILL mid-training, after checkpoint-2 (the collation sleep makes a step ~0.3 s).
    proc = launch_child(args(corpus, out), tmp_path / "kill1.log", batch_sleep=0.15)
    wait_for(lambda: ckpt.is_complete(out / "checkpoint-2") and steps_logged(out) >= 3, proc, "step 3")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert not (out / "model.safetensors").exists(), "the run finished before it was killed"
    first = ckpt.latest_complete(out)
    assert first is not None and ckpt.checkpoint_step(first) in (2, 4)
    for c in ckpt.complete_checkpoints(out):
        assert_whole(c)

    # 2. The same command again (train.resume defaults to auto): it resumes; SIGKILL it while checkpoint-6 sits
    # fully written in the staging directory.
    sentinel = tmp_path / "saving-6"
    proc = launch_child(args(corpus, out), tmp_path / "kill2.log",
                        slow_publish=f"6:60:{sentinel}")
    wait_for(sentinel.exists, proc, "the save of checkpoint-6")
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL
    assert (out / ckpt.STAGING / "checkpoint-6" / "model.safetensors").is_file()  # the interrupted save's debris
    assert not (out / "checkpoint-6").exists()
    assert ckpt.latest_complete(out) == out / "checkpoint-4"  # never the half-saved one
    assert "resuming from" in (tmp_path / "kill2.log").read_text()  # said in one line
    for c in ckpt.complete_checkpoints(out):
        assert_whole(c)

    # 3. The same command once more, to the end: same weights as the uninterrupted run; the debris is gone.
    summary = run_ok(corpus, out)
    assert summary["resumed_from"] == str(out / "checkpoint-4")
    assert_same_final_weights(out, reference)
    assert [ckpt.checkpoint_step(p) for p in ckpt.complete_checkpoints(out)] == [2, 4, 6, 8]
    assert not (out / ckpt.STAGING).exists()


def test_preemption_signal_during_a_save_completes_it_then_stops_and_resumes_exactly(corpus, reference, tmp_path):
    out = tmp_path / "run"
    sentinel = tmp_path / "saving-4"
    proc = launch_child(args(corpus, out), tmp_path / "preempt.log", slow_publish=f"4:2:{sentinel}")
    wait_for(sentinel.exists, proc, "the save of checkpoint-4")
    proc.send_signal(signal.SIGUSR1)  # Slurm's usual warning signal (--signal=USR1@...), mid-save
    assert proc.wait(timeout=120) == 0, tail(tmp_path / "preempt.log")
    saved = [ckpt.checkpoint_step(p) for p in ckpt.complete_checkpoints(out)]
    assert saved == [2, 4, 5], saved  # the save in progress finished; the signal's own save came a step later
    for c in ckpt.complete_checkpoints(out):
        assert_whole(c)
    assert not (out / "model.safetensors").exists() and not (out / "train_summary.json").exists()
    assert "pre-empted at step 5" in (tmp_path / "preempt.log").read_text()
    summary = run_ok(corpus, out, "train.resume=auto")
    assert summary["resumed_from"] == str(out / "checkpoint-5") and summary["steps"] == 8
    assert_same_final_weights(out, reference)


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        pytest.skip(f"SKIPPED LOUDLY: cannot mount a {size} tmpfs to fill a disk (needs root): {res.stderr.strip()}")


def test_full_disk_keeps_the_previous_checkpoint_and_the_run_recovers_once_space_is_freed(corpus, reference,
                                                                                        tmp_path):
    mnt = tmp_path / "small"
    _mount_tmpfs(mnt, "10m")  # room for checkpoint-2 (~7 MB), not for checkpoint-4 as well
    try:
        out = mnt / "run"
        log = tmp_path / "full.log"
        proc = launch_sft(args(corpus, out), log)
        text = log.read_text()
        assert proc.returncode == 1, tail(log)
        assert "disk full while saving checkpoint-4" in text and "previous checkpoint is kept" in text, tail(log)
        assert str(out / "checkpoint-2") in text and "train.resume=auto" in text
        assert ckpt.latest_complete(out) == out / "checkpoint-2"
        assert_whole(out / "checkpoint-2")
        assert not (out / "checkpoint-4").exists() and not (out / ckpt.STAGING / "checkpoint-4").exists()

        # Space freed (the tmpfs grows): the same command with train.resume=auto finishes the run exactly.
        subprocess.run(["mount", "-o", "remount,size=64m", str(mnt)], check=True)
        summary = run_ok(corpus, out, "train.resume=auto")
        assert summary["resumed_from"] == str(out / "checkpoint-2")
        assert_same_final_weights(out, reference)
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)
        shutil.rmtree(mnt, ignore_errors=True)
