"""train.max_steps beyond the planned mix: one line at start with both numbers, or with mix.upsample the mix
scaled up to exactly the samples those steps take (same proportions, seeded, resumable) and trained to the end."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from fixtures_data import data_config, llava_row, make_standin_like, write_image, write_jsonl, write_registry

from data_mix.config import BudgetConfig, GroupConfig, MixConfig
from data_mix.mixer import build_mix
from data_mix.plan import extend_plan, make_plan

REGISTRY = Path(__file__).resolve().parents[1] / "recipes" / "data" / "registry.yaml"
GENERAL = ["llava_onevision_si", "llava_next_interleave", "llava_next_interleave_3d", "llava_video"]


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    sizes = {"llava_onevision_si": 300, "llava_next_interleave": 100, "llava_next_interleave_3d": 60, "llava_video": 60}
    return make_standin_like(tmp_path_factory.mktemp("standin"), REGISTRY, sizes, default_rows=20)


def _mix(upsample: bool) -> MixConfig:
    return MixConfig(unit="tokens", upsample=upsample, seed=0,
                     groups={"general": GroupConfig(weight=3, sources=list(GENERAL)),
                             "ability": GroupConfig(weight=1, sources=["spatial_size"])},
                     budget=BudgetConfig(unit="epochs", value=1, group="ability"))


def test_extend_plan_keeps_proportions_and_hits_the_total_exactly():
    mix = MixConfig(unit="samples", groups={"a": GroupConfig(weight=1, sources=["x", "y"]),
                                            "b": GroupConfig(weight=3, sources=["z"])},
                    budget=BudgetConfig(unit="samples", value=80))
    plan = make_plan(mix, {"x": 30, "y": 10, "z": 100})
    assert [sp.samples for sp in plan.sources] == [15, 5, 60]
    big = extend_plan(plan, 1001, "why")  # x 12.5125: 187.7, 62.6, 750.75 -> largest remainders take the 2 left
    assert big.total_samples == 1001 and [sp.samples for sp in big.sources] == [188, 62, 751]
    assert big.groups["b"].share == pytest.approx(0.75, abs=0.001) and big.budget == "1001 samples = the planned 80 samples x 12.51 (why; rows repeated)"
    assert extend_plan(plan, 80, "why") is plan and extend_plan(plan, 12, "why") is plan


def test_min_samples_scales_the_mix_only_with_upsample(standin):
    data = data_config(standin)
    own = build_mix(data, _mix(upsample=False))
    n = 3 * own.total_samples + 7
    assert build_mix(data, _mix(upsample=False), min_samples=n).plan.fingerprint() == own.plan.fingerprint()
    mix = build_mix(data, _mix(upsample=True), min_samples=n)
    assert mix.total_samples == n and "train.max_steps with mix.upsample" in mix.plan.budget
    assert mix.plan.groups["ability"].share == pytest.approx(0.25, abs=0.01)
    drawn = list(mix)
    assert len(drawn) == n
    size_rows = [s.row for s in drawn if s.source == "spatial_size"]  # 20 rows, about 3 epochs of them
    assert len(size_rows) == mix.plan.groups["ability"].samples > 60
    assert sorted(size_rows[:20]) == list(range(20)) and sorted(size_rows[20:40]) == list(range(20))
    assert size_rows[:20] != size_rows[20:40]  # a new seeded order per epoch
    # seeded and resumable: the same stream again, and from a saved position
    again = build_mix(data, _mix(upsample=True), min_samples=n)
    it = iter(again)
    head = [next(it) for _ in range(101)]
    resumed = build_mix(data, _mix(upsample=True), min_samples=n)
    resumed.load_state_dict(again.state_dict())
    assert [(s.source, s.row) for s in head + list(resumed)] == [(s.source, s.row) for s in drawn]


def _tiny_run(tmp_path: Path, name: str, max_steps: int, upsample: bool) -> tuple[int, Path]:
    """A real SFT run of the tiny model on one 10-row source (5 steps of 2 planned)."""
    from train.recipe import load_recipe
    from train.sft import run

    root = tmp_path / "data"
    for k, color in enumerate(((200, 40, 40), (40, 200, 40))):
        write_image(root / f"img{k}.png", color=color)
    write_jsonl(root / "rows.jsonl", [llava_row(i, image=f"img{i % 2}.png", answer=["red", "green"][i % 2])
                                      for i in range(10)])
    reg = write_registry(root / "reg.yaml", {"src": {"format": "llava", "files": ["rows.jsonl"]}})
    out = tmp_path / name
    recipe = load_recipe(None, [
        "model.name_or_path=tiny-qwen2.5-vl", f"data.root={root}", f"data.registry={reg}", "data.max_length=256",
        "mix.unit=samples", "mix.groups={g: {sources: [src]}}", "mix.budget.unit=epochs", "mix.budget.value=1",
        f"mix.upsample={str(upsample).lower()}", f"train.max_steps={max_steps}", "train.per_device_batch_size=2",
        "train.grad_accum=1", "train.save_steps=0", "train.logging_steps=1", "train.report_to=[jsonl]",
        "train.num_threads=1", f"train.output_dir={out}", "eval.bench=null", "data.decontaminate=off", "optim.lr=1e-3"])
    return run(recipe, []), out


@pytest.mark.slow
def test_max_steps_beyond_the_mix_warns_once_with_both_numbers_then_trains_to_it_with_upsample(tmp_path, caplog):
    import torch

    torch.set_num_threads(1)
    with caplog.at_level(logging.INFO, logger="train.sft"):
        code, out = _tiny_run(tmp_path, "capped", max_steps=8, upsample=False)
    assert code == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("steps:")]
    assert len(lines) == 1 and lines[0].startswith("steps: 5, not train.max_steps=8: the mix plans 10 samples per "
                                                   "rank = 5 steps of 2")
    assert "set mix.upsample=true to repeat the mix" in lines[0] and "up to 8 steps" in lines[0]
    assert json.loads((out / "train_summary.json").read_text())["steps"] == 5

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="train.sft"):
        code, out = _tiny_run(tmp_path, "upsampled", max_steps=8, upsample=True)
    assert code == 0
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("steps:")]
    assert len(lines) == 1 and lines[0].startswith("steps: 8 (train.max_steps; the mix plans 16 samples per rank")
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["steps"] == 8 and summary["samples_seen"] == 16
    plan = json.loads((out / "mix_plan.json").read_text())
    assert plan["total_samples"] == 16 and "train.max_steps with mix.upsample" in plan["budget"]
    logged = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "train/loss" in r]
    assert [r["step"] for r in logged] == list(range(1, 9))
    assert logged[-1]["train/loss"] < logged[0]["train/loss"]  # the repeated rows are trained on, not skipped


def test_steps_of_a_source_that_is_not_a_planned_mix(caplog):
    """A ListSource (tests, user code) has no plan to compare with: train.max_steps is taken as asked, in one
    line; with -1 its size per rank gives the steps; a source of unknown size then needs train.max_steps."""
    from train.data import ListSource
    from train.recipe import load_recipe
    from train.sft import steps_for

    source = ListSource(list(range(8)), epochs=1)  # per_step 2 x 2 = 4; world 2: 4 samples per rank
    recipe = load_recipe(None, ["train.per_device_batch_size=2", "train.grad_accum=2", "train.max_steps=3"])
    with caplog.at_level(logging.INFO, logger="train.sft"):
        assert steps_for(source, recipe, world_size=2) == 3  # more than the source's 1 step: not capped
    assert [r.getMessage() for r in caplog.records] == ["steps: 3 (train.max_steps; the source is not a planned mix)"]
    recipe.train.max_steps = -1
    assert steps_for(source, recipe, world_size=2) == 1 and steps_for(source, recipe, world_size=1) == 2
    with pytest.raises(ValueError, match="fewer than one optimizer step"):
        steps_for(ListSource(list(range(6))), recipe, world_size=2)
    with pytest.raises(ValueError, match="train.max_steps=-1 needs a source of known size"):
        steps_for(iter([]), recipe, world_size=1)
