"""The key table (train/keys.py, rewards/config.py): the walk over every leaf key, the one validator, the
generated docs/KEYS.md, ``--explain`` and ``--print-config``'s origins.

The walk: every leaf key is carried by both GRPO backends or warned at start. A verl config path must change in
the written verl config when the key changes; an ``unsupported`` key set to a value that matters must be named
by the backend's start-up warnings; a TRL argument must be a field of TRL's GRPOConfig. No hand-kept list.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rewards.keyspec import backend_kind, in_range
from train.key_backends import mapping_problems, uncarried, value_of
from train.keys import table
from train.recipe import RecipeError, load_recipe

REPO = Path(__file__).resolve().parents[1]
BASE = ["model.name_or_path=/nonexistent/keywalk-model", "train.output_dir=/nonexistent/keywalk-run"]


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, (list, dict)) else str(value)


def probe(spec, current) -> str:
    """A valid value of the key other than ``current``, as override text."""
    if spec.probe is not None:
        return spec.probe
    if spec.choices:
        return next(c for c in spec.choices if c != current)
    if "bool" in spec.type:
        return _text(not current)
    if spec.type.startswith("str"):
        return "keywalk_probe"
    if spec.type.startswith(("int", "float")):
        numbers = [2, 3, 0.5, 0.25] if current is None else [current + 1, current / 2, current * 2 + 1, 0.5]
        for n in numbers:
            n = int(n) if "int" in spec.type and "float" not in spec.type else float(n)
            if n != current and (spec.range is None or in_range(n, spec.range)):
                return _text(n)
    if spec.type.startswith("list[str]"):
        return "[keywalk_probe]"
    raise AssertionError(f"{spec.key}: give the key a probe value in its declaration")


def _config(recipe):
    from train.grpo.verl_backend import build_config

    return build_config(recipe, Path("/nonexistent/train.parquet"), Path("/nonexistent/val.parquet"))


def _at(cfg, path):
    try:
        return value_of(cfg, path)
    except KeyError:
        return "<absent>"


def test_every_key_has_a_trl_and_a_verl_mapping_and_a_provenance():
    assert mapping_problems(table()) == []


def test_a_key_added_without_a_verl_mapping_fails_the_walk():
    """A new field of a recipe section (here train.new_knob) gets no verl mapping by default: the walk names it."""
    from rewards.keyspec import build_table
    from train import config, keys

    new_train = dataclasses.make_dataclass("TrainConfig", [("new_knob", int, dataclasses.field(default=1))],
                                           bases=(config.TrainConfig,))
    new_recipe = dataclasses.make_dataclass("Recipe", [("train", new_train, dataclasses.field(
        default_factory=new_train))], bases=(config.Recipe,))
    built = build_table(new_recipe, "", keys.DECLARED, trl="", verl="")
    spec = built["train.new_knob"]
    trl, verl = keys.SECTIONS["train."]
    grown = {**table(), "train.new_knob": dataclasses.replace(spec, trl=spec.trl or trl, verl=spec.verl or verl)}
    assert mapping_problems(grown) == ["train.new_knob: no valid verl mapping (None)"]


@pytest.fixture(scope="module")
def base_configs():
    cache = {}

    def get(when: tuple[str, ...]):
        if when not in cache:
            recipe = load_recipe(None, [*BASE, *when])
            cache[when] = (recipe, _config(recipe))
        return cache[when]
    return get


def test_walk_every_leaf_key_is_carried_by_both_backends_or_warned(base_configs):
    import trl

    trl_args = {f.name for f in dataclasses.fields(trl.GRPOConfig)}
    walked, problems = 0, []
    for key, spec in table().items():
        if "*" in key or key in ("bases",):  # mapping entries: checked through their section; bases: popped by compose
            continue
        walked += 1
        kinds = {backend_kind(spec.trl, "trl"), backend_kind(spec.verl, "verl")}
        if not kinds & {"path", "unsupported"}:
            continue
        base, base_cfg = base_configs(spec.when)
        value = probe(spec, value_of(base, key))
        changed = load_recipe(None, [*BASE, *spec.when, f"{key}={value}"])
        for backend in ("trl", "verl"):
            mapping = spec.backend(backend)
            kind = backend_kind(mapping, backend)
            if kind == "arg" and mapping[4:] not in trl_args:
                problems.append(f"{key}: {mapping} is not an argument of TRL's GRPOConfig")
            elif kind == "path" and _at(_config(changed), mapping) == _at(base_cfg, mapping):
                problems.append(f"{key}={value}: verl config {mapping} did not change")
            elif kind == "unsupported" and not any(line.startswith(key + "=")
                                                   for line in uncarried(changed, backend)):
                problems.append(f"{key}={value}: not warned on {backend}")
            elif kind is None:
                problems.append(f"{key}: {mapping!r}")
    assert problems == []
    assert walked > 140


def test_verl_warns_each_uncarried_key_once_in_table_order():
    """Defaults verl cannot honour either are warned (checkpoints kept, metrics.jsonl, truncated completions);
    a recipe that sets them as verl does warns nothing."""
    recipe = load_recipe(None, [*BASE, "eval.bench=null"])
    assert [line.split("=")[0] for line in uncarried(recipe, "verl")] == [
        "train.save_total_limit", "train.report_to", "grpo.mask_truncated_completions"]
    carried = [*BASE, "eval.bench=null", "train.save_total_limit=0", "train.report_to=[tensorboard]",
               "grpo.mask_truncated_completions=false"]
    assert uncarried(load_recipe(None, carried), "verl") == []
    recipe = load_recipe(None, [*carried, "model.freeze.projector=true", "optim.scheduler=linear",
                                "train.logging_steps=1", "grpo.use_vllm=false", "train.packing=true",
                                "model.trainable_fp32=true", "grpo.scale_rewards=batch"])
    lines = uncarried(recipe, "verl")
    assert [line.split("=")[0] for line in lines] == [
        "model.freeze.projector", "model.trainable_fp32", "optim.scheduler", "train.packing", "train.logging_steps",
        "grpo.scale_rewards", "grpo.use_vllm"]
    assert "optim.scheduler='linear': verl's actor has cosine and constant schedules; it runs constant" in lines
    assert [line.split("=")[0] for line in uncarried(recipe, "trl")] == ["train.packing"]
    derived = load_recipe(None, [*BASE, "train.per_device_batch_size=4", "grpo.verl.nnodes=2", "optim.lr=1e-4"])
    assert uncarried(derived, "trl") == []  # derived and verl-only values are no TRL warning


def test_verl_refuses_several_processes(monkeypatch):
    from train.grpo.verl_backend import VerlBackendError, refuse_several_processes

    monkeypatch.setenv("WORLD_SIZE", "1")
    refuse_several_processes()
    monkeypatch.setenv("WORLD_SIZE", "4")
    with pytest.raises(VerlBackendError, match=r"WORLD_SIZE=4.*python launch/grpo.py recipe=\.\.\. grpo.backend=verl"):
        refuse_several_processes()


def test_one_validator_for_recipes_rewards_and_sweeps():
    from rewards.config import reward_config_from_dict

    with pytest.raises(RecipeError, match=r"grpo.top_p=1.5 must be in \(0, 1\]"):
        load_recipe(None, ["grpo.top_p=1.5"])
    with pytest.raises(RecipeError, match=r"reward.levels.L1.length_penalty=-1.0 must be in \[0, inf\)"):
        load_recipe(None, ["reward.levels.L1.length_penalty=-1"])
    with pytest.raises(ValueError, match=r"reward.levels.L1.length_penalty=-1 must be in \[0, inf\)"):
        reward_config_from_dict({"levels": {"L1": {"length_penalty": -1}}})
    with pytest.raises(RecipeError, match=r"model.dtype='bf17' is not one of auto, bf16, fp16, fp32; did you mean"):
        load_recipe(None, ["model.dtype=bf17"])


def test_docs_keys_md_is_generated_from_the_table():
    """docs/KEYS.md regenerated equals the committed page: fix with `python -m train.keydoc --markdown > docs/KEYS.md`."""
    from train.keydoc import KEYS_MD, markdown

    page = markdown()
    assert (REPO / KEYS_MD).read_text() == page, "docs/KEYS.md is stale: python -m train.keydoc --markdown > docs/KEYS.md"
    assert page.count("\n| `") == len(table())


@pytest.mark.parametrize("launcher,key,expect", [
    ("sft", "optim.lr", ["optim.lr (float)", "default:    1e-05", "allowed:    (0, inf)", "provenance: project choice",
                         "GRPO trl:   TRL argument learning_rate", "GRPO verl:  verl config actor_rollout_ref.actor.optim.lr"]),
    ("grpo", "model.freeze.vision", ["default:    true", "provenance: SpatialScore",
                                     "verl config actor_rollout_ref.actor.freeze_vision_tower"]),
    ("evaluate", "reward.levels.L3.reasoning_bonus_mode", ["reward.levels.*.reasoning_bonus_mode (str)",
                                                          "allowed:    once, by_length", "default:    'once'"]),
    ("sweep", "grpo.scale_rewards", ["allowed:    group, batch, none", "unsupported: verl normalises advantages"]),
])
def test_explain_on_every_launcher(launcher, key, expect):
    proc = subprocess.run([sys.executable, f"launch/{launcher}.py", "--explain", key], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for line in expect:
        assert line in proc.stdout


def test_explain_of_an_unknown_key_is_one_line_with_the_closest():
    proc = subprocess.run([sys.executable, "launch/sft.py", "--explain", "optim.lrr"], cwd=REPO, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "unknown key 'optim.lrr'; did you mean 'optim.lr'" in proc.stderr


def test_print_config_says_where_each_value_comes_from(capsys):
    """The winning value of each key and its origin: the recipe file, a base, an override, the protocol preset,
    a derived value or the default; the output stays YAML (the origins are comments)."""
    import yaml

    from train.cli import main

    args = ["recipe=dist_size_corr", "optim.lr=2e-5", "eval.max_new_tokens=32", "--print-config"]
    assert main("launch/sft.py", args, run=lambda *a: 1) == 0
    out = capsys.readouterr().out
    assert yaml.safe_load(out)["optim"]["lr"] == 2e-5
    for line in ["#   optim.lr = 2e-05  <- override", "#   eval.max_new_tokens = 32  <- override",
                 "#   optim.projector_lr = 2e-05  <- derived (train.recipe.finalize)",
                 "#   eval.max_samples_per_leaf = 16  <- preset eval.protocol=quick",
                 "#   model.name_or_path = 'Qwen/Qwen2.5-VL-7B-Instruct'  <- base recipes/base/sft_base.yaml",
                 "#   model.lora.r = 16  <- default", "#   name = 'dist_size_corr'  <- the recipe's file name"]:
        assert line in out.splitlines()
    assert "<- recipe recipes/sft/dist_size_corr.yaml" in out


@pytest.mark.slow
def test_verl_dry_run_says_how_to_create_a_missing_environment(tmp_path, capsys):
    """The dry run prints verl's command; when the interpreter it names does not exist, a note says how to make
    it (the real run stops with the same sentence)."""
    from fixtures_grpo import grpo_recipe, write_bench_source

    from train.grpo import verl_backend

    src = write_bench_source(tmp_path, n=2)
    recipe = grpo_recipe(tmp_path, src, ["grpo.backend=verl", f"train.output_dir={tmp_path / 'run'}",
                                         f"grpo.verl.python={tmp_path / 'no-venv' / 'bin' / 'python'}",
                                         "reward.length_unit=words"])
    assert verl_backend.run(recipe, ["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"command: {tmp_path / 'no-venv' / 'bin' / 'python'} -m verl.trainer.main_ppo" in out
    assert "note: verl's environment is missing" in out and "bash scripts/verl/setup_env.sh" in out
    with pytest.raises(verl_backend.VerlBackendError, match="bash scripts/verl/setup_env.sh"):
        verl_backend.run(recipe, [])
