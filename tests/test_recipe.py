"""The recipe system: composition, overrides, typed checks, CLI exit codes, run metadata."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from train.recipe import RecipeError, available_recipes, load_recipe

FIXED_KEYS = ["model.name_or_path", "model.freeze.vision", "model.freeze.projector", "model.freeze.llm",
              "data.root", "optim.lr", "train.output_dir", "train.max_steps", "train.seed",
              "train.deepspeed", "eval.every_steps"]


def _cli(repo_root, *args):
    return subprocess.run([sys.executable, str(repo_root / "launch" / "sft.py"), *args],
                          capture_output=True, text=True, cwd=repo_root, timeout=120)


def test_print_config_exits_0_with_yaml(repo_root):
    res = _cli(repo_root, "recipe=dist_size_corr", "--print-config")
    assert res.returncode == 0, res.stderr
    cfg = yaml.safe_load(res.stdout)
    assert cfg["name"] == "dist_size_corr"
    assert cfg["model"]["freeze"]["vision"] is True
    assert cfg["mix"]["groups"]["ability"]["weight"] == 1


def test_unknown_key_exits_2_naming_closest(repo_root):
    res = _cli(repo_root, "recipe=dist_size_corr", "optim.lrr=1")
    assert res.returncode == 2
    assert "optim.lrr" in res.stderr and "'optim.lr'" in res.stderr


def test_unknown_recipe_exits_2_naming_closest(repo_root):
    res = _cli(repo_root, "recipe=dist_sise_corr")
    assert res.returncode == 2
    assert "dist_size_corr" in res.stderr


def test_wrong_type_names_key():
    with pytest.raises(RecipeError, match="train.max_steps"):
        load_recipe("dist_size_corr", ["train.max_steps=lots"])


def test_bad_choice_names_closest():
    with pytest.raises(RecipeError, match="auto_think"):
        load_recipe("dist_size_corr", ["reward.mode=autothink"])


@pytest.mark.parametrize("ratio", ["1.0", "2", "-0.1"])
def test_warmup_ratio_must_be_a_share(ratio):
    """The Trainer reads warmup_steps >= 1 as a step count: a ratio of 1.0 would silently mean one step."""
    with pytest.raises(RecipeError, match=r"optim.warmup_ratio=.* must be in \[0, 1\)"):
        load_recipe("dist_size_corr", [f"optim.warmup_ratio={ratio}"])
    assert load_recipe("dist_size_corr", ["optim.warmup_ratio=0.99"]).optim.warmup_ratio == 0.99


def test_nested_dict_section_keys_are_checked():
    with pytest.raises(RecipeError, match="mix.groups.general.weight"):
        load_recipe("dist_size_corr", ["mix.groups.general.wieght=2"])


def test_overrides_win_and_explicit_zero_is_kept():
    r = load_recipe("dist_size_corr", ["optim.lr=3e-4", "optim.projector_lr=0", "train.seed=7"])
    assert r.optim.lr == pytest.approx(3e-4)
    assert r.optim.projector_lr == 0.0  # an explicit 0 is not replaced by the derived default
    assert r.optim.vision_lr == pytest.approx(3e-4)  # derived: None -> lr
    assert r.mix.seed == 7  # derived from train.seed


def test_bases_merge_in_order(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text("optim: {lr: 1.0}\ntrain: {seed: 1}\n")
    (tmp_path / "b.yaml").write_text("optim: {lr: 2.0}\n")
    (tmp_path / "c.yaml").write_text("bases: [a, b]\ntrain: {max_steps: 5}\n")
    monkeypatch.setenv("SPATIALTREE_RECIPES", str(tmp_path))
    r = load_recipe("c")
    assert (r.optim.lr, r.train.seed, r.train.max_steps, r.name) == (2.0, 1, 5, "c")


def test_base_cycle_is_an_error(tmp_path, monkeypatch):
    (tmp_path / "x.yaml").write_text("bases: [y]\n")
    (tmp_path / "y.yaml").write_text("bases: [x]\n")
    monkeypatch.setenv("SPATIALTREE_RECIPES", str(tmp_path))
    with pytest.raises(RecipeError, match="cycle"):
        load_recipe("x")


def test_every_shipped_recipe_loads_with_the_two_local_overrides(tmp_path):
    names = sorted(available_recipes())
    assert "dist_size_corr" in names
    for name in names:
        r = load_recipe(name, ["model.name_or_path=tiny-qwen2.5-vl", f"data.root={tmp_path}"])
        assert r.model.name_or_path == "tiny-qwen2.5-vl" and r.data.root == str(tmp_path), name


def test_fixed_key_names_exist():
    from omegaconf import OmegaConf

    cfg = OmegaConf.structured(load_recipe("dist_size_corr"))
    for key in FIXED_KEYS:
        assert OmegaConf.select(cfg, key, default="__missing__") != "__missing__", key


def test_run_info_records_recipe_commit_and_versions(tmp_path):
    from train.run_info import write_run_info

    r = load_recipe("dist_size_corr", ["optim.lr=0.5"])
    write_run_info(r, tmp_path, "sft")
    assert yaml.safe_load((tmp_path / "recipe.yaml").read_text())["optim"]["lr"] == 0.5
    info = json.loads((tmp_path / "run_info.json").read_text())
    assert info["launcher"] == "sft"
    assert info["packages"]["transformers"] and info["packages"]["torch"]
    assert len(info["git"]["commit"] or "") == 40


def test_unknown_source_exits_2_before_loading_anything(repo_root):
    res = _cli(repo_root, "recipe=dist_size_corr", "mix.groups.ability.sources=[spatial_distanse]")
    assert res.returncode == 2
    assert "spatial_distanse" in res.stderr and "'spatial_distance'" in res.stderr
