"""Table 2 token budgets: the equal-token sweep variant, the matched recipe under overrides, and the note
launch/report.py prints about which budget a table used. Planned on the engine's real small stand-in."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from fixtures_engine import standin_small

from data_mix.mixer import build_mix
from data_mix.report import budget_lines, plan_record
from sweeps.loader import load_sweep
from train.recipe import load_recipe, matched_mix

pytestmark = pytest.mark.slow  # plans token budgets over stand-in data with a tokenizer; make test runs it, make test-quick does not

REPO = Path(__file__).resolve().parents[1]
TABLE2 = REPO / "recipes/sweeps/table2_sft.yaml"
EQUAL = REPO / "recipes/sweeps/table2_sft_equal_tokens.yaml"
TOLERANCE = 0.01  # the stated tolerance: every row's planned tokens within 1% of the baseline's
FAST = ["data.token_estimate_rows=300"]  # token means from 300 draws per source (the same draws for every row)


@pytest.fixture(scope="module")
def standin(tmp_path_factory):
    return standin_small(tmp_path_factory).root


def planned(sweep_path: Path, standin: Path) -> dict[str, object]:
    """Run name -> the Mix each run of the sweep would train on (plan only; nothing drawn)."""
    sweep = load_sweep(sweep_path, sets=[f"data.root={standin}", *FAST], validate_recipes=False)
    out = {}
    for run in sweep.runs:
        recipe = load_recipe(run.recipe, run.recipe_overrides(Path("/sweep")))
        out[run.name] = build_mix(recipe.data, recipe.mix, match_mix=matched_mix(recipe))
    return out


def test_equal_token_variant_plans_the_baselines_tokens_in_every_row(standin):
    mixes = planned(EQUAL, standin)
    base = mixes["baseline"].plan.total_tokens
    for name, mix in mixes.items():
        assert mix.plan.total_tokens == pytest.approx(base, rel=TOLERANCE), name
        assert mix.plan.budget.endswith("tokens (the planned tokens of dist_size_corr)"), name
        if name != "baseline":  # the paper's 1:3 ability : general ratio is kept
            assert mix.plan.groups["ability"].share == pytest.approx(0.25, abs=0.01), name
    # every row: the ability tokens of dist_size_corr. One ability repeats its data (about 3x, more where its
    # samples are shorter than the others'), four abilities draw less than an epoch of each
    target = mixes["dist_size_corr"].plan.groups["ability"].tokens
    for name in ("dist", "corr", "size", "dist_size_corr_motion", "all_spatial_75"):
        assert mixes[name].plan.groups["ability"].tokens == pytest.approx(target, rel=TOLERANCE), name
    assert [sp.epochs > 2 for sp in mixes["dist"].plan.sources if sp.group == "ability"] == [True]
    motion = [sp.epochs for sp in mixes["dist_size_corr_motion"].plan.sources if sp.group == "ability"]
    assert len(motion) == 4 and all(0.5 < e < 1 for e in motion)
    lines = budget_lines([(n, {"total_tokens": m.plan.total_tokens, "budget": m.plan.budget}) for n, m in mixes.items()],
                         reference="baseline")
    assert len(lines) == 1 and lines[0].startswith("- Token budget: equal.")


def test_default_variant_differs_and_is_reported_as_such(standin):
    mixes = planned(TABLE2, standin)
    base = mixes["baseline"].plan.total_tokens
    assert mixes["dist_size_corr"].plan.total_tokens == pytest.approx(base, rel=TOLERANCE)
    singles = ("dist", "corr", "size")  # each a share of the baseline's tokens; the three together are it
    for name in singles:
        assert mixes[name].plan.total_tokens / base < 0.6, name
        assert mixes[name].plan.budget == "1 epoch(s) of group 'ability'"
    assert sum(mixes[n].plan.total_tokens for n in singles) == pytest.approx(base, rel=0.02)
    assert mixes["dist_size_corr_motion"].plan.total_tokens / base == pytest.approx(4 / 3, rel=0.1)
    lines = budget_lines([(n, {"total_tokens": m.plan.total_tokens, "budget": m.plan.budget}) for n, m in mixes.items()],
                         reference="baseline")
    assert lines[0].startswith("- Token budget: NOT equal") and "; dist " in lines[0]
    assert "1 epoch(s) of group 'ability'" in lines[0] and "the planned tokens of dist_size_corr" in lines[0]


def test_matched_recipe_is_planned_with_the_runs_own_overrides(standin):
    """The defect: the matched recipe was loaded without the command line, so a sweep's shared budget
    overrides (here: 600 samples, rows repeated) did not reach it and the baseline matched something else."""
    shared = [f"data.root={standin}", "mix.budget.unit=samples", "mix.budget.value=600", "mix.budget.group=null",
              "mix.upsample=true", "train.seed=3", *FAST]
    base = load_recipe("baseline", shared)
    assert base.mix.budget.match_overrides == shared  # recorded in the run's recipe.yaml
    assert matched_mix(base).budget.value == 600 and matched_mix(base).seed == 3
    dsc = load_recipe("dist_size_corr", shared)
    target = build_mix(dsc.data, dsc.mix)
    assert target.plan.total_samples == 600
    mix = build_mix(base.data, base.mix, match_mix=matched_mix(base))
    assert mix.plan.total_tokens == pytest.approx(target.plan.total_tokens, rel=TOLERANCE)
    # an explicit list wins; the match_* keys never reach the matched recipe (no chain)
    own = load_recipe("dist", [*shared, "mix.budget.match_recipe=dist_size_corr", "mix.budget.match_overrides=[]"])
    assert own.mix.budget.match_overrides == [] and matched_mix(own).budget.match_recipe is None
    chained = load_recipe("dist", [*shared, "mix.budget.match_recipe=dist_size_corr"])
    assert not any(o.startswith("mix.budget.match_") for o in chained.mix.budget.match_overrides)


def test_the_equal_token_sweep_is_table2_plus_its_two_budget_keys():
    a, b = yaml.safe_load(TABLE2.read_text()), yaml.safe_load(EQUAL.read_text())
    assert a["runs"] == b["runs"] and a["baseline"] == b["baseline"]
    assert a["defaults"]["slurm"] == b["defaults"]["slurm"]
    assert b["defaults"]["overrides"] == {**a["defaults"]["overrides"], "mix.budget.match_recipe": "dist_size_corr",
                                          "mix.upsample": True}


def test_report_prints_the_budget_each_sft_run_wrote(standin, tmp_path):
    """launch/report.py's note comes from RUN_DIR/mix_plan.json, which the SFT run writes at start (as here)."""
    from fixtures_sweep import leaf_scores, write_summary

    from eval_hooks import layout
    from eval_hooks.io import atomic_write_json
    from eval_hooks.report import collect, read_plan, to_markdown

    for name, overrides in (("baseline", []), ("dist", []), ("dist_eq", ["mix.budget.match_recipe=dist_size_corr",
                                                                            "mix.upsample=true"])):
        recipe = load_recipe("baseline" if name == "baseline" else "dist", [f"data.root={standin}", *FAST, *overrides])
        run_dir = tmp_path / "runs" / name
        atomic_write_json(run_dir / layout.MIX_PLAN, plan_record(build_mix(recipe.data, recipe.mix,
                                                                           match_mix=matched_mix(recipe))))
        write_summary(run_dir, leaf_scores(name, 0.3))
    record = read_plan(tmp_path / "runs" / "dist")
    assert record["budget"] == "1 epoch(s) of group 'ability'" and record["match_recipe"] is None
    assert json.loads((tmp_path / "runs/baseline/mix_plan.json").read_text())["match_recipe"] == "dist_size_corr"
    table = to_markdown(collect(tmp_path, baseline="baseline"))
    assert "Token budget: NOT equal" in table and "dist " in table and "(0.2" in table
    (tmp_path / "runs/dist/mix_plan.json").unlink()  # a run without a plan file is named, not silently dropped
    table = to_markdown(collect(tmp_path, baseline="baseline"))
    assert "Token budget: equal." in table and "no mix_plan.json: dist" in table
