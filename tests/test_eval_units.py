"""eval_hooks pieces that need no model: aggregation views, subset choice, sharding, files, lmms-eval command."""

from __future__ import annotations

import json
import os
import random
import stat
import sys
import time
from types import SimpleNamespace

import pytest

from data_mix.sample import Sample
from eval_hooks import distributed as D
from eval_hooks import tree as T
from eval_hooks.config import EvalConfig
from eval_hooks.io import atomic_write_json, atomic_write_jsonl, read_json
from eval_hooks.lmms import LmmsEvalLauncher, build_command, command_env, lmms_model_name
from eval_hooks.offline import compare_main, find_summary
from eval_hooks.subset import select_subset
from rewards import taxonomy as tx
from tests.fixtures_eval import WEIGHTS, leaf_scores_of, recompute_root

ALL_LEAVES = [f"{lvl}/{ab}/{leaf}" for lvl, (_, abs_) in WEIGHTS.items() for ab, (_, leaves) in abs_.items()
              for leaf in leaves]


def _records(rng: random.Random, leaves: list[str]) -> list[dict]:
    recs = []
    for key in leaves:
        for _ in range(rng.randint(1, 4)):
            recs.append({"leaf": key, "score": rng.choice([0.0, 1.0, rng.random()])})
    return recs


def test_weights_table_matches_the_taxonomy():
    assert sorted(ALL_LEAVES) == sorted(n.key for n in tx.leaves())
    for key in ALL_LEAVES:
        lvl, ab, leaf = key.split("/")
        assert tx.node(key).weight == WEIGHTS[lvl][1][ab][1][leaf]
        assert tx.node(f"{lvl}/{ab}").weight == WEIGHTS[lvl][1][ab][0]


@pytest.mark.parametrize("mode", ["renormalize", "reference"])
@pytest.mark.parametrize("seed", range(6))
def test_aggregation_equals_independent_recomputation(mode, seed):
    rng = random.Random(seed)
    leaves = rng.sample(ALL_LEAVES, rng.randint(1, len(ALL_LEAVES)))
    recs = _records(rng, leaves)
    agg = T.aggregate_records(recs, mode)
    summary = {"tree": T.tree_dict(agg)}
    means = leaf_scores_of(summary)
    assert set(means) == set(leaves)
    for key in leaves:
        own = [r["score"] for r in recs if r["leaf"] == key]
        assert means[key] == pytest.approx(sum(own) / len(own))
    assert summary["tree"]["score"] == pytest.approx(recompute_root(means, mode), abs=1e-12)
    assert summary["tree"]["count"] == len(recs)


def test_modes_differ_on_a_subset():
    recs = [{"leaf": "L1/Geometry/Distance", "score": 1.0}, {"leaf": "L3/Seq. Plan./Route", "score": 0.5}]
    ren = T.aggregate_records(recs, "renormalize")
    ref = T.aggregate_records(recs, "reference")
    assert ren.overall == pytest.approx((1.0 + 0.5) / 2)  # L1 and L3 both 1 at the levels that have data
    assert ref.overall == pytest.approx(0.25 * (0.5 * 0.65 * 1.0) + 0.25 * (0.35 * 0.4 * 0.5))
    assert ren.scores["L2"] is None and ref.scores["L2"] == 0.0


def test_metric_names_and_missing_nodes():
    recs = [{"leaf": "Distance", "score": 0.25}, {"leaf": "L1/Geometry/Distance", "score": 0.75}]
    m = T.metrics(T.aggregate_records(recs, "renormalize"))
    assert m["bench/overall"] == pytest.approx(0.5)
    assert m["bench/L1"] == m["bench/L1/Geometry"] == m["bench/L1/Geometry/Distance"] == pytest.approx(0.5)
    assert "bench/L2" not in m and "bench/L1/Geometry/Size" not in m
    ref = T.metrics(T.aggregate_records(recs, "reference"))
    assert ref["bench/L2"] == 0.0 and len(ref) == 1 + 4 + 11 + 27


def test_tree_table_is_x100_one_decimal_and_compare_gives_deltas(tmp_path, capsys):
    a = {"step": 0, "mode": "renormalize", "num_samples": 2,
         "tree": T.tree_dict(T.aggregate_records([{"leaf": "Distance", "score": 0.123}], "renormalize"))}
    b = {"step": 4, "mode": "renormalize", "num_samples": 2,
         "tree": T.tree_dict(T.aggregate_records([{"leaf": "Distance", "score": 0.5},
                                                  {"leaf": "Route", "score": 1.0}], "renormalize"))}
    table = T.format_tree(a)
    assert "12.3" in table and "L1 Perception" in table and "    Distance" in table
    rows = {r["key"]: r for r in T.compare(a, b)}
    assert rows["L1/Geometry/Distance"]["delta"] == pytest.approx(0.5 - 0.123)
    assert rows["L3"]["delta"] is None and rows["L3"]["b"] == 1.0
    atomic_write_json(tmp_path / "a" / "summary.json", a)
    atomic_write_json(tmp_path / "b" / "eval" / "step_4" / "summary.json", b)
    atomic_write_json(tmp_path / "b" / "eval" / "step_12" / "summary.json", b)
    assert find_summary(tmp_path / "b") == tmp_path / "b" / "eval" / "step_12" / "summary.json"
    assert compare_main(["--compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    dist_line = next(line for line in out.splitlines() if line.strip().startswith("Distance"))
    assert dist_line.split()[-3:] == ["12.3", "50.0", "+37.7"]
    assert compare_main(["--compare", str(tmp_path / "a")]) == 2
    assert compare_main(["--compare", str(tmp_path / "a"), str(tmp_path / "nowhere")]) == 2


def _sample(i: int, leaf: str | None, metric: str | None = "multichoiceeval") -> Sample:
    return Sample(id=f"r{i}", source="b", messages=[{"role": "user", "content": [{"type": "text", "text": "q"}]}],
                  leaf=leaf, metricfunc=metric, answer="A", metric_extra={"option": ["x", "y"]}, file="b.jsonl", row=i)


def test_subset_is_seeded_capped_per_leaf_and_reports_skips():
    pool = [_sample(i, "Distance") for i in range(50)] + [_sample(50 + i, "Route") for i in range(3)]
    pool += [_sample(90, None), _sample(91, "Size", metric=None)]
    a = select_subset(pool, max_per_leaf=8, seed=0)
    assert a.counts() == {"L1/Geometry/Distance": 8, "L3/Seq. Plan./Route": 3}
    assert a.skipped == {"no_leaf": 1, "no_metricfunc": 1}
    assert a.available == {"L1/Geometry/Distance": 50, "L3/Seq. Plan./Route": 3}
    assert [s.id for s in select_subset(pool, 8, 0).samples] == [s.id for s in a.samples]
    assert [s.id for s in select_subset(pool, 8, 1).samples] != [s.id for s in a.samples]
    # more records of another leaf do not change this leaf's pick
    more = pool + [_sample(200 + i, "Route") for i in range(30)]
    b = select_subset(more, 8, 0)
    assert [s.id for s, k in zip(b.samples, b.leaf_keys) if k.endswith("Distance")] == \
        [s.id for s, k in zip(a.samples, a.leaf_keys) if k.endswith("Distance")]
    assert len(select_subset(pool, 0, 0)) == 53  # 0 = every usable record


@pytest.mark.parametrize("n,world", [(0, 2), (1, 2), (7, 2), (8, 4), (33, 8), (5, 1)])
def test_shards_cover_the_subset_once_with_equal_lengths(n, world):
    shards = [D.shard_indices(n, r, world) for r in range(world)]
    assert len({len(s) for s in shards}) == 1
    real = sorted(i for s in shards for i in s if i >= 0)
    assert real == list(range(n))
    merged = D.merge_shards([[(i, f"x{i}") for i in s] for s in shards], n)
    assert merged == [f"x{i}" for i in range(n)]
    if n:
        pairs = [(i, i) for s in shards for i in s if i >= 0]
        with pytest.raises(RuntimeError, match="expected"):
            D.merge_shards([pairs[:-1]], n)


def test_result_files_are_atomic_and_strict_json(tmp_path):
    atomic_write_jsonl(tmp_path / "p.jsonl", [{"a": float("nan")}, {"b": float("inf")}])
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert rows == [{"a": "nan"}, {"b": "inf"}]
    atomic_write_json(tmp_path / "s.json", {"x": 1})
    assert read_json(tmp_path / "s.json") == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.jsonl", "s.json"]  # no temporary files left


def _ckpt(tmp_path, model_type="qwen2_5_vl"):
    ck = tmp_path / "checkpoint-10"
    ck.mkdir(parents=True)
    (ck / "config.json").write_text(json.dumps({"model_type": model_type}))
    return ck


def test_lmms_eval_command_line(tmp_path, monkeypatch):
    ck = _ckpt(tmp_path)
    cfg = EvalConfig(lmms_eval_tasks=["spatialtreebench", "vsibench"], lmms_eval_args=["--limit", "8"],
                     lmms_eval_model_args="attn_implementation=sdpa", lmms_eval_devices="7")
    cmd = build_command(cfg, ck, tmp_path / "out")
    assert cmd[:3] == [sys.executable, "-m", "lmms_eval"]
    args = dict(zip(cmd[3::2], cmd[4::2]))
    assert args["--model"] == "qwen2_5_vl"
    assert args["--model_args"] == f"pretrained={ck.resolve()},attn_implementation=sdpa"
    assert args["--tasks"] == "spatialtreebench,vsibench"
    assert args["--output_path"] == str((tmp_path / "out").resolve())
    assert "--log_samples" in cmd and cmd[-2:] == ["--limit", "8"]
    assert lmms_model_name(_ckpt(tmp_path / "q3", "qwen3_vl")) == "qwen3_vl"
    with pytest.raises(ValueError, match="lmms_eval_model"):
        lmms_model_name(_ckpt(tmp_path / "x", "llava"))
    assert lmms_model_name(tmp_path / "x" / "checkpoint-10", "llava_onevision") == "llava_onevision"
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    env = command_env(cfg)
    assert "RANK" not in env and "WORLD_SIZE" not in env and env["CUDA_VISIBLE_DEVICES"] == "7"
    with pytest.raises(ValueError, match="empty"):
        build_command(EvalConfig(), ck, tmp_path)


def test_lmms_eval_launch_does_not_wait(tmp_path):
    """The launcher returns at once; a stand-in interpreter records its argv and takes 1.5 s."""
    fake = tmp_path / "fake_python"
    fake.write_text("#!/bin/sh\nsleep 1.5\necho \"$@\" > \"$(dirname \"$0\")/argv.txt\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    cfg = EvalConfig(lmms_eval_tasks=["spatialtreebench"], lmms_eval_python=str(fake), lmms_eval_max_running=1)
    launcher = LmmsEvalLauncher(cfg, tmp_path / "run")
    t0 = time.perf_counter()
    proc = launcher.launch(_ckpt(tmp_path), "step_10")
    assert time.perf_counter() - t0 < 1.0 and proc.poll() is None
    assert launcher.launch(_ckpt(tmp_path / "b"), "step_20") is None  # one at a time: skipped, recorded
    assert launcher.skipped and launcher.still_running() == ["step_10"]
    assert proc.wait(timeout=30) == 0
    assert "--tasks spatialtreebench" in (tmp_path / "argv.txt").read_text()
    saved = read_json(tmp_path / "run" / "eval" / "lmms_eval" / "step_10" / "command.json")
    assert saved["argv"][0] == str(fake)
    assert os.path.exists(tmp_path / "run" / "eval" / "lmms_eval" / "step_10" / "lmms_eval.log")


def test_eval_config_fields_have_docstrings():
    import ast
    import inspect

    from eval_hooks import config

    src = ast.parse(inspect.getsource(config))
    cls = next(n for n in src.body if isinstance(n, ast.ClassDef) and n.name == "EvalConfig")
    body = cls.body
    for i, node in enumerate(body):
        if isinstance(node, ast.AnnAssign):
            nxt = body[i + 1] if i + 1 < len(body) else None
            assert isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant), node.target.id





def test_prompt_template_wraps_the_question_and_keeps_media_parts():
    from eval_hooks.generation import GenerationSettings, prompt_messages

    cfg = EvalConfig(prompt_template="Q: {question}", max_new_tokens=7, do_sample=True, temperature=0.5)
    settings = GenerationSettings.from_eval_config(cfg, synced_gpus=True)
    assert (settings.prompt_template, settings.max_new_tokens, settings.do_sample, settings.temperature,
            settings.synced_gpus) == ("Q: {question}", 7, True, 0.5, True)

    s = Sample(id="x", source="b", messages=[
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Which is closer?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "A"}]}])
    plain = prompt_messages(s)
    assert plain == s.messages[:1]
    wrapped = prompt_messages(s, "{question}\nThink inside <think> </think>.")
    assert wrapped[-1]["content"] == [{"type": "image"},
                                      {"type": "text", "text": "Which is closer?\nThink inside <think> </think>."}]
    assert s.messages[0]["content"][1]["text"] == "Which is closer?"  # the sample itself is untouched
    with pytest.raises(ValueError, match="no user prompt"):
        prompt_messages(Sample(id="y", source="b", messages=[], file="f.jsonl", row=3))


def test_callback_hands_saved_checkpoints_to_lmms_eval(tmp_path):
    from eval_hooks.callback import BenchEvalCallback

    fake = tmp_path / "fake_python"
    fake.write_text("#!/bin/sh\necho \"$@\" >> \"$(dirname \"$0\")/calls.txt\"\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    cfg = EvalConfig(lmms_eval_tasks=["vsibench"], lmms_eval_python=str(fake), lmms_eval_max_running=2)
    run = tmp_path / "run"
    cb = BenchEvalCallback(cfg, data_cfg=None, output_dir=run)
    _ckpt(run, "qwen2_vl")  # run/checkpoint-10
    args, state = SimpleNamespace(output_dir=str(run)), SimpleNamespace(global_step=10, is_world_process_zero=True)
    cb.on_save(args, state, control=None)
    (run / "config.json").write_text(json.dumps({"model_type": "qwen2_5_vl"}))
    cb.final_model_saved(run)
    for _, proc in cb.lmms.running:
        assert proc.wait(timeout=30) == 0
    calls = (tmp_path / "calls.txt").read_text().splitlines()
    assert len(calls) == 2 and "--model qwen2_vl" in calls[0] and "--model qwen2_5_vl" in calls[1]
    assert f"pretrained={(run / 'checkpoint-10').resolve()}" in calls[0]
    assert (run / "eval" / "lmms_eval" / "step_10" / "command.json").is_file()
    assert (run / "eval" / "lmms_eval" / "final" / "command.json").is_file()
    assert BenchEvalCallback(EvalConfig(), data_cfg=None, output_dir=run).lmms is None  # no tasks: nothing runs


def test_no_evaluation_while_the_run_is_preempted(tmp_path):
    from eval_hooks.callback import BenchEvalCallback

    cb = BenchEvalCallback(EvalConfig(every_steps=2), data_cfg=None, output_dir=tmp_path)
    cb.trainer = SimpleNamespace(callback_handler=SimpleNamespace(callbacks=[SimpleNamespace(triggered=True)]),
                                 model=object())
    state = SimpleNamespace(global_step=4, max_steps=10, is_world_process_zero=True, epoch=1.0, log_history=[])
    cb.on_step_end(None, state, None)  # would need the bench (data_cfg=None) if it evaluated
    cb.on_train_end(None, state, None)
    assert cb.results == [] and state.log_history == []
