"""The lead's check: torchrun --nproc_per_node 2 launch/sft.py recipe=dist_size_corr on the tiny model and the
stand-in data, under DeepSpeed ZeRO-2 and ZeRO-3 (CPU, gloo). One run per stage, checked by several tests.

Then the hard case on purpose: every micro-batch gives the two ranks different media (text vs image+video,
image vs text, ...; tests/zero3_media_child.py), under ZeRO-2 and ZeRO-3, against the same micro-batches
in one process without DeepSpeed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from fixtures_engine import standin_small
from safetensors.torch import load_file

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.dist


def free_port() -> int:
    """A free TCP port (torchrun here does not resolve --master_port 0 for its workers)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def child_env() -> dict[str, str]:
    env = dict(os.environ, DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.setdefault("TORCH_EXTENSIONS_DIR", str(Path.home() / ".cache" / "torch_extensions"))
    return env


def tail(log: Path, n: int = 40) -> str:
    return "\n".join(log.read_text().splitlines()[-n:])


@pytest.fixture(scope="module", params=["zero2", "zero3"])
def ds_run(request, tmp_path_factory):
    standin = standin_small(tmp_path_factory)
    out = tmp_path_factory.mktemp(request.param) / "out"
    env = child_env()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
           str(REPO / "launch" / "sft.py"), "recipe=dist_size_corr", "model.name_or_path=tiny-qwen2.5-vl",
           f"data.root={standin.root}", "train.max_steps=3", f"train.deepspeed={request.param}",
           f"train.output_dir={out}", "train.num_threads=1"]
    log = out.parent / "log.txt"
    with open(log, "w") as f:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT, timeout=900)
    return request.param, proc.returncode, out, log


def test_exits_zero_with_loadable_final_checkpoint(ds_run):
    stage, code, out, log = ds_run
    assert code == 0, f"{stage} run failed; tail of {log}:\n{tail(log)}"
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(out)
    assert model.config.model_type == "qwen2_5_vl"
    assert type(AutoProcessor.from_pretrained(out)).__name__ == "Qwen2_5_VLProcessor"
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 3
    assert (out / "checkpoint-3" / "COMPLETE").is_file()
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert any("train/loss" in r and "train/tokens_per_s" in r for r in rows)


def test_vision_frozen_lm_trained(ds_run, tiny_model_dir):
    stage, code, out, _ = ds_run
    assert code == 0
    from transformers import AutoModelForImageTextToText

    start = dict(AutoModelForImageTextToText.from_pretrained(tiny_model_dir).named_parameters())
    end = dict(AutoModelForImageTextToText.from_pretrained(out).named_parameters())
    assert start.keys() == end.keys()
    vision = [k for k in start if k.startswith("model.visual.") and ".merger." not in k]
    assert vision and all(torch.equal(start[k], end[k]) for k in vision), stage
    lm = [k for k in start if k.startswith(("model.language_model.", "lm_head."))]
    changed = [k for k in lm if not torch.equal(start[k], end[k])]
    assert len(changed) == len(lm), f"{stage}: unchanged LM tensors {set(lm) - set(changed)}"
    assert any(not torch.equal(start[k], end[k]) for k in start if ".merger." in k)


def test_final_weights_are_plain_keys(ds_run, tiny_model_dir):
    """The saved file uses the same tensor names as the base checkpoint (vLLM & co. read it as is)."""
    _, code, out, _ = ds_run
    assert code == 0
    assert load_file(str(out / "model.safetensors")).keys() == load_file(str(tiny_model_dir / "model.safetensors")).keys()


@pytest.fixture(scope="module")
def media_runs(tmp_path_factory) -> dict[str, Path]:
    """The per-rank media schedule of tests/zero3_media_child.py: one process (reference), ZeRO-2, ZeRO-3."""
    child = REPO / "tests" / "zero3_media_child.py"
    root = tmp_path_factory.mktemp("media")
    outs = {}
    for stage in ("none", "zero2", "zero3"):
        out, log = root / stage / "out", root / f"{stage}.log"
        launcher = [] if stage == "none" else ["-m", "torch.distributed.run", "--nproc_per_node", "2",
                                               "--master_port", str(free_port())]
        with open(log, "w") as f:
            proc = subprocess.run([sys.executable, *launcher, str(child), str(out), str(root / stage / "zoo"), stage],
                                  cwd=REPO, env=child_env(), stdout=f, stderr=subprocess.STDOUT, timeout=900)
        assert proc.returncode == 0, f"{stage}: per-rank media schedule failed; tail of {log}:\n{tail(log)}"
        outs[stage] = out
    return outs


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_ranks_with_different_media_train_like_one_process(media_runs, stage, tiny_model_dir):
    """Text-only vs image+video micro-batches (and every other pairing) on the two ranks: the run completes and its
    weights equal the one-process run on the same micro-batches (the blank vision calls add exactly nothing)."""
    start = load_file(str(tiny_model_dir / "model.safetensors"))
    ref = load_file(str(media_runs["none"] / "model.safetensors"))
    got = load_file(str(media_runs[stage] / "model.safetensors"))
    assert got.keys() == ref.keys() == start.keys()
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], atol=1e-5, rtol=0, msg=lambda m, n=name: f"{stage} {n}: {m}")
    moved = {n: (ref[n] - start[n]).abs().max().item() for n in ref}
    assert min(moved[n] for n in moved if n.startswith(("model.layers.", "visual.merger."))) > 1e-4  # a real update
    assert all(moved[n] == 0 for n in moved if n.startswith("visual.") and ".merger." not in n)  # frozen tower


@pytest.fixture(scope="module")
def packed_flash_runs(tmp_path_factory) -> Path:
    """The same per-rank schedule with packing on the flash-attention code path (train/flash_standin.py; every
    micro-batch's two samples take two bins, flattened into one row), ZeRO-2 then ZeRO-3 in one torchrun launch."""
    child = REPO / "tests" / "zero3_media_child.py"
    root = tmp_path_factory.mktemp("packed")
    log = root / "log.txt"
    with open(log, "w") as f:
        proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                               "--master_port", str(free_port()), str(child), str(root / "out"), str(root / "zoo"),
                               "zero2,zero3", "packed"],
                              cwd=REPO, env=child_env(), stdout=f, stderr=subprocess.STDOUT, timeout=900)
    assert proc.returncode == 0, f"packed flash-path runs failed; tail of {log}:\n{tail(log)}"
    assert log.read_text().count("model: attention flash_varlen_standin") == 4  # 2 ranks x 2 stages
    return root / "out"


@pytest.mark.parametrize("stage", ["zero2", "zero3"])
def test_packed_flash_path_under_deepspeed_trains_like_unpacked(packed_flash_runs, media_runs, stage):
    """Issue 27: packing under DeepSpeed on the flash path (several bins per micro-batch, flattened) ends with the
    weights of the one-process padded run on the same samples (1e-5), with every token counted (nonpad 1)."""
    ref = load_file(str(media_runs["none"] / "model.safetensors"))
    got = load_file(str(packed_flash_runs / stage / "model.safetensors"))
    assert got.keys() == ref.keys()
    for name in ref:
        torch.testing.assert_close(got[name], ref[name], atol=1e-5, rtol=0, msg=lambda m, n=name: f"{stage} {n}: {m}")
    rows = [json.loads(line) for line in (packed_flash_runs / stage / "metrics.jsonl").read_text().splitlines()]
    assert [r["train/nonpad_fraction"] for r in rows if "train/nonpad_fraction" in r] == [1.0, 1.0]
