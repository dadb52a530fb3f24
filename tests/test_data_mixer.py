"""The mixer: plan arithmetic, determinism, resume, sharding, epochs without replacement, budgets."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest
from fixtures_data import data_config, llava_row, make_standin_like, write_image, write_jsonl, write_registry

from data_mix.badsample import BadSample, TooManyBadSamples
from data_mix.config import BudgetConfig, GroupConfig, MixConfig
from data_mix.mixer import build_mix
from data_mix.permutation import Permutation, stable_key
from data_mix.plan import PlanError, make_plan

REGISTRY = Path(__file__).resolve().parents[1] / "recipes" / "data" / "registry.yaml"
GENERAL = ["llava_onevision_si", "llava_next_interleave", "llava_next_interleave_3d", "llava_video"]
DSC = ["spatial_distance", "spatial_size", "spatial_correspondence"]


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    """The shipped registry's layout, filled with small fixture rows (fast; not the engine's data)."""
    root = tmp_path_factory.mktemp("standin")
    sizes = {"llava_onevision_si": 300, "llava_next_interleave": 100, "llava_next_interleave_3d": 60, "llava_video": 60}
    return make_standin_like(root, REGISTRY, sizes, default_rows=20)


def _mix(unit="tokens", ability=DSC, budget=None, **kw):
    groups = {"general": GroupConfig(weight=3, sources=list(GENERAL))}
    if ability:
        groups["ability"] = GroupConfig(weight=1, sources=list(ability))
    return MixConfig(unit=unit, groups=groups, budget=budget or BudgetConfig(unit="epochs", value=1, group="ability"),
                     seed=kw.pop("seed", 0), **kw)


def _ids(samples):
    return [(s.source, s.row) for s in samples]


def test_permutation_is_a_bijection_and_seeded():
    for n in (1, 2, 5, 64, 1000, 4097):
        p = Permutation(n, stable_key("t", n))
        assert sorted(p(i) for i in range(n)) == list(range(n))
    a = [Permutation(1000, stable_key(0)) (i) for i in range(20)]
    assert a == [Permutation(1000, stable_key(0))(i) for i in range(20)]
    assert a != [Permutation(1000, stable_key(1))(i) for i in range(20)] and a != list(range(20))
    big = Permutation(10_000_000, stable_key(3))
    assert len({big(i) for i in range(0, 10_000_000, 9973)}) == len(range(0, 10_000_000, 9973))


def test_plan_arithmetic_for_each_budget_kind():
    rows = {**{s: 1000 for s in GENERAL}, **{s: 100 for s in DSC}}
    tps = {**{s: 10.0 for s in GENERAL}, **{s: 20.0 for s in DSC}}
    plan = make_plan(_mix(), rows, tps)  # 1 epoch of ability = 300 x 20 tokens; general = 3x that
    assert plan.groups["ability"].samples == 300 and plan.groups["general"].tokens == pytest.approx(18000)
    assert plan.groups["ability"].share == pytest.approx(0.25) and plan.groups["general"].samples == 1800
    plan = make_plan(_mix(unit="samples", budget=BudgetConfig(unit="samples", value=400)), rows, None)
    assert (plan.groups["general"].samples, plan.groups["ability"].samples) == (300, 100)
    plan = make_plan(_mix(budget=BudgetConfig(unit="tokens", value=8000)), rows, tps)
    assert plan.total_tokens == pytest.approx(8000, rel=0.01) and plan.groups["ability"].samples == 100
    # default epoch group = the one that runs out first (here general: 400 rows for 3/4 of the tokens)
    small = {s: 100 for s in rows}
    plan = make_plan(_mix(budget=BudgetConfig(unit="epochs", value=1)), small, {s: 10.0 for s in rows})
    assert plan.groups["general"].samples == 400 and plan.groups["ability"].samples == 133
    with pytest.raises(PlanError, match="needs 150 samples but has 100 rows.*mix.upsample=true"):
        make_plan(_mix(budget=BudgetConfig(unit="epochs", value=1.5, group="ability")), rows, tps)
    up = make_plan(_mix(budget=BudgetConfig(unit="epochs", value=2, group="ability"), upsample=True), rows, tps)
    assert up.groups["ability"].samples == 600 and max(sp.epochs for sp in up.sources) == pytest.approx(2)


def test_realized_share_and_same_seed_same_order(standin):
    data = data_config(standin)
    a = list(build_mix(data, _mix()))
    b = list(build_mix(data, _mix()))
    assert _ids(a) == _ids(b) and len(a) == len(set(_ids(a)))
    tokens = collections.Counter()
    for s in a:
        tokens[s.meta["group"]] += s.meta["tokens"]
    assert tokens["ability"] / sum(tokens.values()) == pytest.approx(0.25, abs=0.01)
    assert collections.Counter(s.source for s in a if s.meta["group"] == "ability") == {s: 20 for s in DSC}
    c = list(build_mix(data, _mix(seed=1)))
    assert _ids(c) != _ids(a) and sorted(_ids(c)) != sorted(_ids(a))


def test_every_prefix_keeps_the_ratio(standin):
    data = data_config(standin)
    mix = build_mix(data, _mix(unit="samples", budget=BudgetConfig(unit="samples", value=200)))
    groups = [s.meta["group"] for s in mix]
    assert len(groups) == 200
    for k in (20, 100, 150, 200):
        assert abs(groups[:k].count("ability") - k / 4) <= len(DSC) + 1


def test_resume_draws_exactly_what_an_uninterrupted_run_draws(standin):
    data = data_config(standin)
    full = _ids(build_mix(data, _mix()))
    for k in (0, 1, 37, len(full) - 1):
        first = build_mix(data, _mix())
        it = iter(first)
        head = [next(it) for _ in range(k)]
        state = first.state_dict()
        resumed = build_mix(data, _mix())
        resumed.load_state_dict(state)
        assert _ids(head) + _ids(resumed) == full
    other = build_mix(data, _mix(seed=5))
    with pytest.raises(ValueError, match="cannot resume.*seed"):
        other.load_state_dict(state)


def test_ranks_and_workers_are_disjoint_and_cover_the_stream(standin):
    data = data_config(standin)
    full = _ids(build_mix(data, _mix()))
    seen = []
    for rank in range(3):
        mix = build_mix(data, _mix(), rank=rank, world_size=3)
        for worker in range(2):
            part = list(mix.iterate(0, worker, 2, block=4))
            assert all(s.meta["mix_pos"] // 4 % 2 == worker for s in part)
            seen += _ids(part)
        assert mix.samples_this_rank == len(range(rank, len(full), 3))
    assert sorted(seen) == sorted(full) and len(seen) == len(full)


def test_dataloader_workers_hand_out_batches_in_stream_order(standin):
    import torch

    from data_mix.torch_dataset import MixIterableDataset

    data = data_config(standin)
    mix = build_mix(data, _mix())
    ds = MixIterableDataset(mix, transform=lambda s: f"{s.source}:{s.row}", block_size=4)
    loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2, collate_fn=list)
    got = [x for batch in loader for x in batch]
    assert got == [f"{s}:{r}" for s, r in _ids(build_mix(data, _mix()))]


def test_upsampling_repeats_rows_only_across_epochs(standin):
    data = data_config(standin)
    budget = BudgetConfig(unit="epochs", value=2.5, group="ability")
    mix = build_mix(data, _mix(unit="samples", budget=budget, upsample=True, ability=["spatial_size"]))
    drawn = [s.row for s in mix if s.source == "spatial_size"]
    assert len(drawn) == 50
    assert sorted(drawn[:20]) == list(range(20)) and sorted(drawn[20:40]) == list(range(20))
    assert len(set(drawn[40:])) == 10 and drawn[:20] != drawn[20:40]


def test_fraction_takes_a_seeded_subset(standin):
    data = data_config(standin)
    mix = _mix(unit="samples")
    mix.groups["ability"].fraction = 0.75
    m = build_mix(data, mix)
    rows = collections.defaultdict(set)
    for s in m:
        rows[s.source].add(s.row)
    assert all(len(rows[s]) == 15 for s in DSC)
    assert rows["spatial_size"] != set(range(15))
    checked = build_mix(data, mix, check_rows=True)  # the row check reads exactly the rows the mix can draw
    assert [(s.source, s.row) for s in checked] == [(s.source, s.row) for s in build_mix(data, mix)]
    assert checked.row_check.seen == sum(sp.rows for sp in checked.plan.sources)
    for d in checked._draws:
        assert {int(i) for i in (d.table.tokens >= 0).nonzero()[0]} == set(d.available_row_ids() or range(len(d.rows)))


def test_baseline_matches_token_consumption(standin):
    data = data_config(standin)
    target = build_mix(data, _mix())
    baseline = _mix(ability=None, budget=BudgetConfig(match_recipe="dist_size_corr"))
    with pytest.raises(ValueError, match="pass its mix"):
        build_mix(data, baseline)
    base = build_mix(data, baseline, match_mix=_mix())
    assert list(base.plan.groups) == ["general"]
    got = sum(s.meta["tokens"] for s in base)
    want = sum(s.meta["tokens"] for s in target)
    assert got == pytest.approx(want, rel=0.02)


def _bad_source(tmp_path, n=20, missing_at=(7,)):
    write_image(tmp_path / "img.png")
    rows = [llava_row(i, image="gone.png" if i in missing_at else "img.png") for i in range(n)]
    write_jsonl(tmp_path / "d.jsonl", rows)
    reg = write_registry(tmp_path / "reg.yaml", {"src": {"format": "llava", "files": ["d.jsonl"]}})
    mix = MixConfig(unit="samples", groups={"g": GroupConfig(sources=["src"])}, budget=BudgetConfig(value=1))
    return data_config(tmp_path, registry=str(reg)), mix


def test_missing_image_stops_or_is_counted(tmp_path):
    data, mix = _bad_source(tmp_path)
    with pytest.raises(BadSample) as err:
        list(build_mix(data, mix))
    assert err.value.reason == "missing_media" and err.value.row == 7 and "d.jsonl, row 8" in str(err.value)
    data.on_bad_sample = "skip"
    m = build_mix(data, mix)
    assert len(list(m)) == 19 and dict(m.skips.counts) == {"missing_media": 1}


def test_too_many_skips_stop_the_run_and_long_samples_are_bad(tmp_path):
    data, mix = _bad_source(tmp_path, n=150, missing_at=range(0, 150, 10))
    data.on_bad_sample, data.max_skip_fraction, data.skip_check_after = "skip", 0.05, 100
    with pytest.raises(TooManyBadSamples, match="data.max_skip_fraction=0.05"):
        list(build_mix(data, mix))
    data2, mix2 = _bad_source(tmp_path / "b", missing_at=())
    data2.max_length = 10
    with pytest.raises(BadSample, match=r"too_long: row is \d+ tokens, data.max_length is 10"):
        next(iter(build_mix(data2, mix2)))


def test_first_batch_of_a_big_manifest_is_quick(tmp_path):
    import time

    write_image(tmp_path / "img.png")
    line = llava_row(0)
    n = 200_000
    with open(tmp_path / "big.jsonl", "w") as fh:
        for i in range(n):
            line["id"] = i
            fh.write(f'{{"id": {i}, "image": "img.png", "conversations": {line["conversations"]}}}\n'.replace("'", '"'))
    reg = write_registry(tmp_path / "reg.yaml", {"big": {"format": "llava", "files": ["big.jsonl"]}})
    data = data_config(tmp_path, registry=str(reg))
    mix = MixConfig(unit="samples", groups={"g": GroupConfig(sources=["big"])}, budget=BudgetConfig(value=1), seed=0)
    t0 = time.perf_counter()
    it = iter(build_mix(data, mix))
    batch = [next(it) for _ in range(32)]
    assert time.perf_counter() - t0 < 5.0
    assert len({s.row for s in batch}) == 32 and max(s.row for s in batch) > 1000  # shuffled, not the head


def _long_row_sources(tmp_path):
    """Two groups in tokens, one epoch of group "long": its source has a ~25k-token row (row 3) and a missing
    image (row 6) among 10; the other group's source has 12 short rows."""
    write_image(tmp_path / "img.png")
    rows = [llava_row(i) for i in range(10)]
    rows[2] = llava_row(2, question="describe the scene in detail " * 4000)
    rows[5] = llava_row(5, image="gone.png")
    write_jsonl(tmp_path / "long.jsonl", rows)
    write_jsonl(tmp_path / "short.jsonl", [llava_row(i) for i in range(12)])
    reg = write_registry(tmp_path / "reg.yaml", {"long": {"format": "llava", "files": ["long.jsonl"]},
                                                 "short": {"format": "llava", "files": ["short.jsonl"]}})
    mix = MixConfig(unit="tokens", groups={"long": GroupConfig(sources=["long"]), "gen": GroupConfig(sources=["short"])},
                    budget=BudgetConfig(unit="epochs", value=1, group="long"))
    data = data_config(tmp_path, registry=str(reg))
    data.max_length = 512
    return data, mix


def test_every_row_is_checked_first_and_an_over_long_row_is_named_not_blamed_on_the_plan(tmp_path):
    """build_mix(check_rows=True) (what SFT and the data report do before the model loads): under error the
    over-long row stops it by file, row and both numbers; under skip both bad rows are counted, the plan is made
    without "not enough data", and the draws reuse the check's token counts (the counter is not called again)."""
    data, mix = _long_row_sources(tmp_path)
    with pytest.raises(BadSample, match=r"long\.jsonl, row 3: too_long: row is \d{2},\d{3} tokens, "
                                        r"data\.max_length is 512"):
        build_mix(data, mix, check_rows=True)
    with pytest.raises(BadSample, match=r"row 3: too_long"):  # without the check, the plan's token count names it too
        build_mix(data, mix)
    data.on_bad_sample, data.max_skip_fraction = "skip", 0.5
    m = build_mix(data, mix, check_rows=True)
    assert m.row_check.seen == 22 and dict(m.row_check.counts) == {"too_long": 1, "missing_media": 1}
    assert m.plan.total_samples <= 22  # the means leave the long row out: no source asked for more than it has
    calls = []
    counter = m.counter
    m.counter = lambda s: calls.append(s) or counter(s)
    drawn = list(m)
    assert calls == [] and len(drawn) == m.plan.total_samples - sum(m.skips.counts.values())
    assert {(s.source, s.row) for s in drawn}.isdisjoint({("long", 2), ("long", 5)})
