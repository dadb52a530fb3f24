"""``make gpu-check`` takes any family: the CPU smoke checks that run in-process (packing, rollout) pass for
tiny-internvl (1-D positions, tiles, no grid) and tiny-qwen3-vl (4-row positions, DeepStack); a family that refuses
packing gets a skip with its reason; the throughput meter counts each family's vision patches and packed samples
(what its FLOPs rest on) as the vision tower actually sees them. The whole smoke run with throughput for all seven
tiny models ran by hand (docs/MODELS.md); tests/test_gpu_check.py runs it end to end for tiny-qwen2.5-vl.
"""

from __future__ import annotations

import pytest
import torch

from bench.gpu_check import c_packing, c_rollout, inputs
from bench.gpu_check.flops import model_shape
from bench.gpu_check.record import Settings
from bench.gpu_check.step_child import sequence_stats
from train.models import family_for_checkpoint

FAMILIES = ["tiny-internvl", "tiny-qwen3-vl"]
pytestmark = pytest.mark.slow  # gpu-check's CPU smoke for these families and tiny-qwen3.5 (~45 s)


def _settings(name: str, tmp_path) -> Settings:
    return Settings(device="cpu", model=name, out=tmp_path / "r.json", workdir=tmp_path, gpus=2)


@pytest.mark.parametrize("name", FAMILIES)
def test_packing_and_rollout_checks_pass(name, tmp_path):
    settings = _settings(name, tmp_path)
    packing = c_packing.run(settings)
    m = packing.measured
    assert packing.status == "pass", packing.reason
    assert m["family"] == family_for_checkpoint(name).name
    assert m["loss_rel_diff"] < 1e-5 and m["grad_rel_diff"] < 1e-4 and m["samples"] == 6
    assert m["bins"] >= 2 and m["rows"] == 1  # several bins, one flattened row for the flash path
    assert m["cross_sample_grad_max"] == 0.0 < m["own_sample_grad_max"]  # a packed sample sees only itself
    assert m["control_cross_sample_grad_max"] > 1e-3  # boundaries removed: the leak is visible
    rollout = c_rollout.run(settings)
    assert rollout.status == "pass", rollout.reason
    assert rollout.measured["near_greedy_share"] == 1.0 and rollout.measured["tokens"] >= 5


def test_packing_check_skips_a_family_that_refuses_packing(tmp_path):
    family = family_for_checkpoint("tiny-qwen3.5")
    res = c_packing.run(_settings("tiny-qwen3.5", tmp_path))
    assert res.status == "skipped" and res.reason == f"{family.name}: {family.packing_refusal}"
    from bench.gpu_check.record import table

    assert f"  packing: skipped: {family.name}: {family.packing_refusal}" in table({"packing": res}, "cpu-smoke")


def _patches_seen_by_the_tower(model, batch) -> int:
    """Patch tokens the vision tower's patch embedding produces for the batch's pixels (class tokens left out)."""
    tower = model.model.vision_tower if hasattr(model.model, "vision_tower") else model.model.visual
    total = 0
    for key in ("pixel_values", "pixel_values_videos"):
        pixels = batch.get(key)
        if pixels is None or not pixels.numel():
            continue
        if pixels.dim() == 2:  # patch rows, already flattened by the processor
            total += int(tower.patch_embed(pixels).shape[0])
        else:  # whole tiles: the embedding adds one class token per tile
            out = tower.embeddings(pixels)
            out = out[0] if isinstance(out, tuple) else out
            total += int(out.shape[0] * (out.shape[1] - 1))
    return total


@pytest.mark.parametrize("name", FAMILIES)
def test_throughput_meter_counts_the_familys_patches_and_packed_samples(name, tmp_path):
    from train.packing import pack_batch, rope_index_fn

    settings = _settings(name, tmp_path)
    model, processor = inputs.load(settings, "fp32", "sdpa")
    family = family_for_checkpoint(name)
    enc = inputs.encoder(settings, processor)
    encoded = [enc.encode(s) for s in inputs.samples(settings, 3, 1)]
    packed = pack_batch(encoded, max(len(e) for e in encoded), enc.pad_id, rope_index_fn(model), "sdpa")
    stats = sequence_stats(family, model.config, packed)
    assert stats["packed"] and sorted(stats["lengths"]) == sorted(len(e) for e in encoded)
    with torch.no_grad():
        seen = _patches_seen_by_the_tower(model, packed)
    assert stats["patches"] == seen > 0

    # N_vision: every matmul weight of the tower and the projector (before, only modules named "visual" counted,
    # so InternVL's tower went into N_llm)
    def matmul(module) -> int:
        return sum(m.weight.numel() for m in module.modules()
                   if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d, torch.nn.Conv3d)))

    body = model.model
    vision = (matmul(body.visual) if hasattr(body, "visual") else
              matmul(body.vision_tower) + matmul(body.multi_modal_projector))
    shape = model_shape(model)
    assert shape.n_vision == vision > 0 and shape.n_llm == matmul(model) - vision
