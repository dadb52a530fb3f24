"""What a rerun does with an output_dir that holds a run (train/rerun.py), on hand-made run directories (no
training; the kill -9 + same-command rerun through the trainer is tests/test_sft_resume.py)."""

from __future__ import annotations

import json

import pytest

from train import checkpoint as ckpt
from train import rerun
from train.recipe import load_recipe, to_yaml

BASE = ["train.max_steps=8", "train.save_steps=2", "eval.bench=null"]


def fake_run(out, steps=(2, 4), complete=(2, 4), recipe_overrides=BASE):
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text(to_yaml(load_recipe(None, [*recipe_overrides, f"train.output_dir={out}"])))
    for s in steps:
        (out / f"checkpoint-{s}").mkdir()
        if s in complete:
            ckpt.atomic_write_json(out / f"checkpoint-{s}" / ckpt.MARKER, {"step": s})
    (out / "metrics.jsonl").write_text("".join(json.dumps({"step": i, "train/loss": 1.0}) + "\n" for i in range(1, 6))
                                       + '{"step": 6, "train/lo')  # a torn last line of a killed run
    return out


def recipe_for(out, *extra):
    return load_recipe(None, [*BASE, f"train.output_dir={out}", *extra])


def test_default_is_auto_and_a_fresh_dir_starts_over(tmp_path):
    r = recipe_for(tmp_path / "new")
    assert r.train.resume == "auto"
    p = rerun.plan(r)
    assert p.resume_from is None and not p.move_aside and p.message == ""


def test_same_recipe_resumes_from_the_newest_complete_checkpoint_and_cuts_metrics_back(tmp_path):
    out = fake_run(tmp_path / "run", steps=(2, 4, 6), complete=(2, 4))
    r = recipe_for(out, "train.num_threads=1", "train.resume=auto")  # run-local keys are not compared
    p = rerun.plan(r)
    assert p.resume_from == out / "checkpoint-4" and not p.move_aside
    assert "resuming from" in p.message and "checkpoint-4" in p.message
    rerun.open_run_dir(r, p, rank=0, launcher="test")
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4]  # rows after the resumed step (and the torn line) dropped: one series per step
    assert (out / "checkpoint-2").is_dir() and (out / "checkpoint-6").is_dir()


def test_a_different_recipe_is_refused_naming_the_keys_and_the_choices(tmp_path):
    out = fake_run(tmp_path / "run")
    with pytest.raises(rerun.RerunError) as err:
        rerun.plan(recipe_for(out, "optim.lr=0.5", "train.max_steps=9"))
    msg = str(err.value)
    assert "optim.lr" in msg and "train.max_steps: 8 -> 9" in msg and "checkpoint-4" in msg
    assert "train.resume=never" in msg and "new train.output_dir" in msg and "\n" not in msg
    assert (out / "checkpoint-4").is_dir()  # nothing touched


def test_never_moves_the_old_run_aside_and_deletes_nothing(tmp_path):
    out = fake_run(tmp_path / "run")
    r = recipe_for(out, "train.resume=never", "optim.lr=0.5")
    p = rerun.plan(r)
    assert p.move_aside and p.resume_from is None and p.aside.name.startswith("run.prev-")
    rerun.open_run_dir(r, p, rank=0, launcher="test")
    assert (p.aside / "checkpoint-4" / ckpt.MARKER).is_file() and (p.aside / "metrics.jsonl").is_file()
    assert not list(out.glob("checkpoint-*")) and (out / "recipe.yaml").is_file()


def test_same_recipe_without_a_complete_checkpoint_moves_it_aside(tmp_path):
    out = fake_run(tmp_path / "run", steps=(2,), complete=())
    p = rerun.plan(recipe_for(out))
    assert p.move_aside and p.resume_from is None and "moving it aside" in p.message


def test_retention_never_deletes_checkpoints_of_an_earlier_run(tmp_path):
    out = fake_run(tmp_path / "run", steps=(2, 4, 6, 8), complete=(2, 4, 6, 8))
    removed = ckpt.enforce_retention(out, 1, protected={"checkpoint-2", "checkpoint-4"})
    assert sorted(p.name for p in removed) == ["checkpoint-6"]
    assert sorted(p.name for p in ckpt.complete_checkpoints(out)) == ["checkpoint-2", "checkpoint-4", "checkpoint-8"]


def test_publishing_over_a_complete_checkpoint_keeps_the_old_one(tmp_path):
    out = fake_run(tmp_path / "run", steps=(2, 4), complete=(2, 4))
    staged = out / ckpt.STAGING / "checkpoint-4"
    staged.mkdir(parents=True)
    (staged / "weights").write_text("new")
    ckpt.publish(staged, out)
    assert (out / "checkpoint-4" / "weights").read_text() == "new"
    assert len(list(out.glob("checkpoint-4.replaced-*"))) == 1
