"""GRPO under DeepSpeed (ZeRO-2 and ZeRO-3, 2 CPU processes, gloo) with a KL term, when the ranks see different
media: text-only vs image prompts in the same step, and text and image prompts in one rank's batch
(tests/grpo_media_child.py, through the real ``train.grpo.run``). First, without DeepSpeed: the same prompt set
on one process, and the 0-row pixel inputs TRL makes of a text-only slice.

Before train/grpo/media.py, this run hung under ZeRO-2 (TRL gathers the images for its completions log only on
ranks that have images) and died under ZeRO-3 ("Received data size doesn't match": the ranks gathered different
vision parameters); with only TRL's gather fixed, ZeRO-2 died too (the text-only rank's merger had no gradient,
the gradient buckets differed) and ZeRO-3 died in the reference model's log-prob pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from grpo_media_child import write_prompts
from safetensors.torch import load_file
from test_sft_dist import child_env, free_port

REPO = Path(__file__).resolve().parents[1]
STAGES = ("zero2", "zero3")


def run_group(cmd: list[str], log: Path, timeout: float) -> int | str:
    """Run torchrun; on timeout stop it and its workers (they run in sessions of their own, and a worker stuck in
    a collective outlives a killed torchrun) and return "hung"."""
    import signal

    with open(log, "w") as f:
        proc = subprocess.Popen(cmd, cwd=REPO, env=child_env(), stdout=f, stderr=subprocess.STDOUT)
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            workers = [int(p) for t in Path(f"/proc/{proc.pid}/task").iterdir()
                       for p in (t / "children").read_text().split()]
            proc.terminate()  # torchrun passes SIGTERM on to its workers
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            for pid in workers:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            return "hung"


def tail(log: Path, n: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-n:])


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """One torchrun per stage on the same prompts and seed; each must exit 0."""
    root = tmp_path_factory.mktemp("grpo_media")
    write_prompts(root / "data")
    outs = {}
    for stage in STAGES:
        out, log = root / stage, root / f"{stage}.log"
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", str(free_port()),
               str(REPO / "tests" / "grpo_media_child.py"), str(out), str(root / "data"), stage]
        code = run_group(cmd, log, timeout=300)  # ~15 s here; a collective mismatch may hang instead of failing
        assert code == 0, f"{stage}: GRPO with different media per rank failed ({code}); tail of {log}:\n{tail(log)}"
        outs[stage] = out
    return outs


# ---------------------------------------------------------------------------- one process

def test_empty_pixel_inputs_are_dropped_before_the_model():
    """A text-only slice of a batch with images carries 0-row pixel_values: Qwen's vision tower fails on them; with
    the hook the forward equals the one without pixel inputs."""
    from train.config import ModelConfig
    from train.grpo.media import drop_empty_vision_inputs
    from train.model_loading import load_model
    from train.uniform_vision import vision_owner

    torch.set_num_threads(1)
    model = load_model(ModelConfig(attn_implementation="sdpa"), "cpu").eval()
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    empty = {"pixel_values": torch.zeros(0, 1176), "image_grid_thw": torch.zeros(0, 3, dtype=torch.long)}
    with torch.no_grad():
        expected = model(input_ids=ids).logits
        with pytest.raises((ValueError, RuntimeError)):
            model(input_ids=ids, **empty)
        vision_owner(model).register_forward_pre_hook(drop_empty_vision_inputs, with_kwargs=True, prepend=True)
        assert torch.equal(model(input_ids=ids, **empty).logits, expected)


def test_one_process_trains_on_text_and_image_prompts_in_one_batch(tmp_path):
    """Without DeepSpeed: every generation batch holds the two text-only and the two image prompts (TRL 1.16 alone
    fails here: "only a single or a list of entries is supported but got type=<class 'NoneType'>")."""
    from fixtures_grpo import grpo_recipe

    from train.grpo import run

    torch.set_num_threads(1)
    source = write_prompts(tmp_path / "data")
    recipe = grpo_recipe(source.parent, source, [
        f"train.output_dir={tmp_path / 'out'}", "grpo.num_generations=2", "train.per_device_batch_size=4",
        "train.grad_accum=2", "train.max_steps=1", "grpo.max_completion_length=4", "train.num_threads=1",
        "grpo.beta=0.04"])
    assert run(recipe, []) == 0
    assert json.loads((tmp_path / "out" / "train_summary.json").read_text())["steps"] == 1


# ---------------------------------------------------------------------------- two processes, DeepSpeed

def events(out: Path, rank: int) -> list[dict]:
    return json.loads((out / f"media_rank{rank}.json").read_text())["events"]


def forwards(out: Path, rank: int) -> list[dict]:
    """The multimodal body's calls outside generation (log-prob passes and training forwards), in order."""
    return [e for e in events(out, rank) if "rows" in e and not e["generating"]]


@pytest.mark.dist
@pytest.mark.parametrize("stage", STAGES)
def test_completes_with_checkpoints_a_loadable_model_and_a_frozen_tower(runs, stage, tiny_model_dir):
    out = runs[stage]
    assert (out / "checkpoint-1" / "COMPLETE").is_file() and (out / "checkpoint-2" / "COMPLETE").is_file()
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 2
    assert list((out / "completions").glob("*.parquet"))  # grpo.log_completions: images gathered on every rank
    from train.config import ModelConfig
    from train.model_loading import load_model

    model = load_model(ModelConfig(name_or_path=str(out)), "cpu")
    assert sum(p.numel() for p in model.parameters()) > 100_000
    start = load_file(str(tiny_model_dir / "model.safetensors"))
    end = load_file(str(out / "model.safetensors"))
    assert end.keys() == start.keys()
    moved = {n: (end[n] - start[n]).abs().max().item() for n in start}
    tower = [n for n in moved if n.startswith("visual.") and ".merger." not in n]
    assert tower and all(moved[n] == 0 for n in tower)  # frozen: bit-identical
    assert min(moved[n] for n in moved if ".merger." in n) > 1e-4  # trained, from the image prompts only
    assert min(moved[n] for n in moved if n.startswith("model.layers.")) > 1e-4
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"train/reward"' in line]
    assert [r["step"] for r in rows] == [1, 2] and all(r["train/reward_std"] > 0 for r in rows)  # a real signal


@pytest.mark.dist
@pytest.mark.parametrize("stage", STAGES)
def test_the_ranks_really_saw_different_media(runs, stage):
    """The run is adversarial as intended: the same forward had images on one rank and none on the other; one
    rank's generation batch mixed text and image prompts; a text-only slice of such a batch was scored."""
    out = runs[stage]
    f0, f1 = forwards(out, 0), forwards(out, 1)
    assert len(f0) == len(f1) > 0
    assert any((a["pixel_rows"]["pixel_values"] is None) != (b["pixel_rows"]["pixel_values"] is None)
               for a, b in zip(f0, f1))
    assert any(a["image_rows"] == 0 and b["image_rows"] == a["rows"] for a, b in zip(f0, f1))  # text vs all images
    mixed_batches = text_slices = 0
    for rank in (0, 1):
        batch: list[int] = [0]
        for e in events(out, rank):
            if "generation_batch" in e:
                batch = e["generation_batch"]
                mixed_batches += min(batch) == 0 < max(batch)
            elif not e["generating"] and e["image_rows"] == 0 and max(batch) > 0:
                text_slices += 1  # its 0-row pixel_values were dropped before the model
    assert mixed_batches, "no rank had text and image prompts in one generation batch"
    assert text_slices, "no text-only slice of a batch with images (0-row pixel_values) was scored"


@pytest.mark.dist
@pytest.mark.parametrize("stage", STAGES)
def test_every_rank_runs_the_vision_tower_the_same_number_of_times(runs, stage):
    """Training forwards (policy) run the image and the video call on every rank; so do the reference model's
    log-prob passes under ZeRO-3 (eval mode, partitioned). Under ZeRO-2 the reference is a whole copy per rank
    (DeepSpeed stage 0, no collectives) and is left alone; decoding steps never get blank calls."""
    out = runs[stage]
    for rank in (0, 1):
        for e in forwards(out, rank):
            if e["training"] or stage == "zero3":
                assert e["vision_calls"] == 2, e
            else:
                assert e["vision_calls"] == (e["pixel_rows"]["pixel_values"] is not None), e
        decoding = [e for e in events(out, rank) if e.get("decode")]
        assert decoding and all(e["vision_calls"] == 0 for e in decoding)
    assert [e["training"] for e in forwards(out, 0)].count(False) > 0  # the reference model ran (grpo.beta > 0)


@pytest.mark.dist
def test_zero2_and_zero3_train_the_same_weights(runs):
    """Same seed, same prompts: the same completions, rewards and (to float noise) weights under both stages."""
    rewards = {s: [json.loads(line).get("train/reward") for line in (runs[s] / "metrics.jsonl").read_text().splitlines()
                   if '"train/reward"' in line] for s in STAGES}
    assert rewards["zero2"] == rewards["zero3"]
    a, b = (load_file(str(runs[s] / "model.safetensors")) for s in STAGES)
    for name in a:
        torch.testing.assert_close(a[name], b[name], atol=1e-5, rtol=0, msg=lambda m, n=name: f"{n}: {m}")
