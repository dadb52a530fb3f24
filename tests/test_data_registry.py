"""Registry loading and recipe checks (data_mix.registry)."""

from __future__ import annotations

import pytest
from fixtures_data import write_registry

from data_mix.config import GroupConfig, MixConfig
from data_mix.registry import RegistryError, check_mix, load_registry
from rewards import taxonomy

TABLE2 = ["baseline", "dist", "corr", "size", "dist_size_corr", "dist_size_corr_motion", "all_spatial_75"]


def test_shipped_registry_loads_with_valid_tags_and_standins():
    reg = load_registry("registry")
    assert {"llava_onevision_si", "llava_video", "spatial_distance", "spatialtree_bench"} <= set(reg.names())
    for name, spec in reg.sources.items():
        assert spec.standin.get("task") and spec.standin.get("small", 0) > 0, name
        if spec.tags:
            node = taxonomy.leaf(spec.tags.leaf)
            assert (spec.tags.level, spec.tags.ability) == node.path[:2]
    assert reg.get("spatial_size").tags.leaf == "Size"


def _one(tmp_path, **entry):
    base = {"format": "llava", "files": ["a.jsonl"]}
    return write_registry(tmp_path / "reg.yaml", {"src": {**base, **entry}})


def test_leaf_typo_fails_with_closest_name(tmp_path):
    path = _one(tmp_path, tags={"leaf": "Distnce"})
    with pytest.raises(RegistryError, match=r"src.*'Distnce'.*did you mean 'Distance'"):
        load_registry(str(path))


def test_tags_must_agree_with_taxonomy(tmp_path):
    with pytest.raises(RegistryError, match="level L1, not 'L2'"):
        load_registry(str(_one(tmp_path, tags={"leaf": "Size", "level": "L2"})))
    with pytest.raises(RegistryError, match="belongs to ability 'Geometry'"):
        load_registry(str(_one(tmp_path / "b", tags={"leaf": "Size", "ability": "Relation"})))


def test_unknown_entry_key_and_format_fail_with_closest(tmp_path):
    with pytest.raises(RegistryError, match="unknown key 'media_rot'.*'media_root'"):
        load_registry(str(_one(tmp_path, media_rot="x")))
    with pytest.raises(RegistryError, match="format 'lava'.*'llava'"):
        load_registry(str(_one(tmp_path / "b", format="lava")))


def test_unknown_source_in_a_mix_fails_with_closest_names():
    reg = load_registry("registry")
    mix = MixConfig(groups={"ability": GroupConfig(sources=["spatial_distanse"])})
    with pytest.raises(RegistryError, match="unknown source 'spatial_distanse'.*'spatial_distance'"):
        check_mix(mix, reg)
    mix = MixConfig(groups={"a": GroupConfig(sources=["spatial_size"]), "b": GroupConfig(sources=["spatial_size"])})
    with pytest.raises(RegistryError, match="in two groups"):
        check_mix(mix, reg)


@pytest.mark.parametrize("name", TABLE2)
def test_table2_recipes_load_and_name_known_sources(name):
    from train.recipe import load_recipe

    recipe = load_recipe(name)
    check_mix(recipe.mix, load_registry(recipe.data.registry))
    assert recipe.mix.unit == "tokens"
    assert set(recipe.mix.groups) == ({"general"} if name == "baseline" else {"general", "ability"})
    if name == "baseline":
        assert recipe.mix.budget.match_recipe == "dist_size_corr"
    else:
        assert recipe.mix.groups["general"].weight / recipe.mix.groups["ability"].weight == 3
