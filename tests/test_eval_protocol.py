"""eval.protocol (quick | paper), eval.final_protocol, and eval.judge (require | skip).

Generation is replaced by fixed replies (the settings it is called with are recorded and checked): an
untrained tiny model cannot answer, and the paper protocol's 16,000-token budget is for real checkpoints. Real
generation under both input settings is tests/test_eval_inputs.py; a real launch/evaluate.py run of the paper
protocol on the tiny model is in docs/EVAL.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from fixtures_judge import StubJudge, scores

from eval_hooks import protocol
from eval_hooks.config import EvalConfig
from train.recipe import RecipeError, load_recipe

MOTION = "L2/Underst./Motion Understanding"
MCQ = ["A. the red box", "B. the blue sphere"]


def _rec(question, answer, metric, tags, option=(), qtype="mcq", hint="{}"):
    extra = {"metricfunc": metric, **{f"spatree{i}": t for i, t in enumerate(tags)}}
    return {"question": question, "option": list(option), "answer": answer, "question_type": qtype, "hint": hint,
            "extra_info": json.dumps(extra), "image": [], "video": [], "video_info": []}


def _bench(path: Path, judged: bool = True) -> Path:
    rows = [_rec("Which object is farther?", "B", "multichoiceeval", ("L1", "Geometry", "Distance"), MCQ),
            _rec("How tall is the shelf, in meters?", "4", "meanrelativeacc", ("L1", "Geometry", "Size"), qtype="open"),
            _rec("Which is on the left?", "A", "multichoiceeval", ("L3", "Seq.Plan.", "Route"), MCQ)]
    if judged:
        hint = json.dumps({"prompt": "How does the camera move?"})
        rows += [_rec(f"How does the camera move? ({i})", "The camera pans left.", "gpteval",
                      ("L2", "Underst.", "MotionUnderstanding"), qtype="open", hint=hint) for i in range(2)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


REPLIES = {"Which object is farther?": "B", "How tall is the shelf": "4", "Which is on the left?": "A",
           "How does the camera move?": "It pans to the left."}


def _reply(sample) -> str:
    prompt = sample.messages[-1]["content"][-1]["text"]
    return next(r for q, r in REPLIES.items() if prompt.startswith(q))


def _evaluate(tmp_path: Path, monkeypatch, *overrides: str, judged: bool = True):
    """launch/evaluate.py's CLI path (train.cli.main -> offline.run) with fixed replies; returns
    (exit code, eval/final folder, GenerationSettings seen, model loads)."""
    from eval_hooks import evaluator, offline
    from train.cli import main

    seen, loads = [], []

    def fixed(model, processor, samples, data_cfg, settings, progress=None):
        seen.append(settings)
        return [_reply(s) for s in samples]

    monkeypatch.setattr(evaluator, "generate", fixed)
    out = tmp_path / "out"
    argv = [f"eval.bench={_bench(tmp_path / 'bench.jsonl', judged)}", f"train.output_dir={out}", *overrides]
    code = main("launch/evaluate.py", argv, lambda recipe, flags: offline.run(
        recipe, flags, loader=lambda cfg, device: loads.append(cfg) or ("model", "processor")))
    return code, out / "eval" / "final", seen, loads


def _node(tree: dict, key: str) -> dict | None:
    if tree["key"] == key:
        return tree
    for child in tree.get("children", ()):
        found = _node(child, key)
        if found is not None:
            return found
    return None


# ---------------------------------------------------------------------------------------------- presets

def test_presets_fill_the_unset_keys_and_explicit_values_win():
    quick = load_recipe(None, []).eval
    assert (quick.protocol, quick.max_samples_per_leaf, quick.max_new_tokens, quick.do_sample, quick.mode,
            quick.weights, quick.inputs, quick.judge) == ("quick", 16, 64, False, "renormalize", "lmms_eval",
                                                          "training", "require")
    paper = load_recipe(None, ["eval.protocol=paper"]).eval
    assert (paper.max_samples_per_leaf, paper.max_new_tokens, paper.do_sample, paper.temperature, paper.top_p,
            paper.mode, paper.weights, paper.inputs, paper.answer_extraction) == (
        0, 16000, True, 0.5, 1.0, "reference", "paper_table", "lmms_eval", "auto")
    mine = load_recipe(None, ["eval.protocol=paper", "eval.do_sample=false", "eval.max_new_tokens=0",
                              "eval.mode=renormalize"]).eval
    assert (mine.do_sample, mine.max_new_tokens, mine.mode, mine.weights) == (False, 0, "renormalize", "paper_table")
    assert load_recipe(None, ["eval.max_samples_per_leaf=0"]).eval.max_samples_per_leaf == 0
    assert load_recipe("quickstart_sft", ["eval.protocol=paper"]).eval.max_new_tokens == 4  # the recipe's own value
    assert protocol.resolve(paper) is paper  # idempotent
    for bad, hint in (("eval.protocol=papr", "paper"), ("eval.weights=paper", "paper_table"),
                      ("eval.judge=off", "require, skip"), ("eval.inputs=lmms", "lmms_eval")):
        with pytest.raises(RecipeError, match=hint):
            load_recipe(None, [bad])


def test_the_final_protocol_forces_its_preset_over_the_hooks_values():
    hook = protocol.resolve(EvalConfig(max_samples_per_leaf=4, max_new_tokens=8, final_protocol="paper", seed=3,
                                       prompt_template="Q: {question}", batch_size=2))
    final = protocol.final_config(hook)
    assert (hook.max_samples_per_leaf, hook.max_new_tokens, hook.mode) == (4, 8, "renormalize")
    assert (final.protocol, final.final_protocol, final.max_samples_per_leaf, final.max_new_tokens, final.mode,
            final.weights, final.inputs, final.do_sample) == ("paper", None, 0, 16000, "reference", "paper_table",
                                                              "lmms_eval", True)
    assert (final.seed, final.prompt_template, final.batch_size, final.bench) == (3, "Q: {question}", 2, hook.bench)
    assert protocol.final_config(protocol.resolve(EvalConfig())) is None


# ---------------------------------------------------------------------------------------------- offline runs

def test_the_paper_protocol_through_launch_evaluate(tmp_path, monkeypatch, capsys):
    code, final, seen, loads = _evaluate(tmp_path, monkeypatch, "eval.protocol=paper", judged=False)
    assert code == 0 and len(loads) == 1
    s = seen[0]
    assert (s.max_new_tokens, s.do_sample, s.temperature, s.top_p, s.inputs) == (16000, True, 0.5, 1.0, "lmms_eval")
    assert [x.seed for x in seen] == [1234, 1235, 1236]  # 3 passes from lmms-eval's default seed
    summary = json.loads((final / "summary.json").read_text())
    assert (summary["protocol"], summary["mode"], summary["weights"]) == ("paper", "reference", "paper_table")
    assert summary["settings"]["max_samples_per_leaf"] == 0 and summary["num_samples"] == 3
    assert (summary["repeats"], summary["pass_seeds"]) == (3, [1234, 1235, 1236])
    assert _node(summary["tree"], "L2/Underst.")["weight"] == 0.70  # the weight used is written with the node
    out = capsys.readouterr().out
    assert "protocol=paper  mode=reference  weights=paper_table" in out.splitlines()[0]


def test_a_missing_judge_is_a_one_line_error_at_start(tmp_path, monkeypatch, capsys):
    code, final, seen, loads = _evaluate(tmp_path, monkeypatch)
    err = capsys.readouterr().err.strip()
    assert code == 2 and loads == [] and seen == [] and not final.exists()
    assert len(err.splitlines()) == 1 and err.startswith("launch/evaluate.py: error: eval.bench=")
    assert f"2 records are scored by an LLM judge (gpteval; leaves: {MOTION} (2))" in err
    assert "reward.judge.base_url=URL" in err and "eval.judge=skip" in err

    from train.cli import main  # a training launcher stops before it starts anything

    bench = tmp_path / "bench.jsonl"
    code = main("launch/sft.py", [f"eval.bench={bench}", f"train.output_dir={tmp_path / 'sft'}"],
                lambda recipe, flags: pytest.fail("the run must not start"))
    assert code == 2 and "eval.judge=skip" in capsys.readouterr().err
    code = main("launch/sft.py", [f"eval.bench={bench}", "eval.at_start=false", "eval.at_end=false"],
                lambda recipe, flags: 0)
    assert code == 0  # no evaluation at all: nothing to judge


@pytest.mark.parametrize("protocol_name,root_missing", [("paper", True), ("quick", False)])
def test_skip_reports_the_judged_leaves_missing_never_zero(tmp_path, monkeypatch, capsys, protocol_name,
                                                           root_missing):
    code, final, seen, _ = _evaluate(tmp_path, monkeypatch, f"eval.protocol={protocol_name}", "eval.judge=skip")
    assert code == 0
    preds = [json.loads(x) for x in (final / "predictions.jsonl").read_text().splitlines()]
    passes = 3 if protocol_name == "paper" else 1  # eval.repeats of the protocol
    assert len(preds) == 3 * passes and all(p["metricfunc"] != "gpteval" for p in preds)
    summary = json.loads((final / "summary.json").read_text())
    assert summary["judge"] == {"configured": False, "policy": "skip", "skipped_records": {MOTION: 2}}
    tree = summary["tree"]
    for key in (MOTION, "L2/Underst.", "L2"):
        assert _node(tree, key)["score"] is None and _node(tree, key)["missing"] is True
    # the other leaves are scored (reference mode: Geometry's unsampled Shape leaf counts 0, weight 0.1)
    assert _node(tree, "L1/Geometry")["score"] == pytest.approx(0.9 if root_missing else 1.0)
    if root_missing:  # reference mode: a parent of a missing leaf cannot be computed as the scorer does
        assert summary["overall"] is None and "" in summary["missing"]
    else:  # renormalize: averaged over the levels that have scores, L2 left out
        assert summary["overall"] == pytest.approx(1.0) and "" not in summary["missing"]
    out = capsys.readouterr().out
    motion_line = next(x for x in out.splitlines() if x.strip().startswith("Motion Understanding"))
    assert motion_line.split()[-2:] == ["missing", "0"]
    assert f"missing (no LLM judge, eval.judge=skip): {MOTION} (2 records)" in out


def test_a_configured_judge_scores_the_judged_leaf(tmp_path, monkeypatch):
    with StubJudge(lambda user: scores(0.75, "left is right")) as judge:  # a local OpenAI-compatible judge
        code, final, _, _ = _evaluate(tmp_path, monkeypatch, "eval.protocol=paper", f"reward.judge.base_url={judge.url}")
    assert code == 0
    summary = json.loads((final / "summary.json").read_text())
    motion = _node(summary["tree"], MOTION)
    assert motion["score"] == pytest.approx(0.75) and motion["count"] == 2 and "missing" not in motion
    assert summary["missing"] == [] and summary["judge"]["configured"] is True and summary["overall"] is not None


# ---------------------------------------------------------------------------------------------- the hook

def test_the_callbacks_final_evaluation_uses_the_final_protocol(tmp_path, monkeypatch):
    from data_mix.config import DataConfig
    from eval_hooks import evaluator
    from eval_hooks.callback import BenchEvalCallback

    seen = []

    def fixed(model, processor, samples, data_cfg, settings, progress=None):
        seen.append((settings.max_new_tokens, settings.inputs, len(samples)))
        return [_reply(s) for s in samples]

    monkeypatch.setattr(evaluator, "generate", fixed)
    cfg = load_recipe(None, [f"eval.bench={_bench(tmp_path / 'bench.jsonl', judged=False)}",
                             "eval.max_samples_per_leaf=1", "eval.final_protocol=paper"]).eval
    logged = []
    cb = BenchEvalCallback(cfg, DataConfig(), tmp_path / "run", processor="processor")
    cb.trainer = SimpleNamespace(model="model", callback_handler=SimpleNamespace(
        callbacks=[], on_log=lambda args, state, control, logs: logged.append(dict(logs))))
    state = SimpleNamespace(global_step=6, max_steps=6, is_world_process_zero=True, epoch=1.0, log_history=[])
    cb.on_step_end(None, state, None)  # the hook's last evaluation (quick)
    cb.on_train_end(None, state, None)  # then the final one (paper)
    assert seen == [(64, "training", 3)] + [(16000, "lmms_eval", 3)] * 3  # the paper protocol makes 3 passes
    final = json.loads((tmp_path / "run/eval/final/summary.json").read_text())
    step = json.loads((tmp_path / "run/eval/step_6/summary.json").read_text())
    assert (final["protocol"], final["weights"], final["mode"]) == ("paper", "paper_table", "reference")
    assert (step["protocol"], step["weights"], step["mode"]) == ("quick", "lmms_eval", "renormalize")
    assert "bench/overall" in logged[0] and "bench_final/overall" in logged[1] and "bench/overall" not in logged[1]
    timing = json.loads((tmp_path / "run/eval/timing.json").read_text())
    assert [e["step"] for e in timing["evaluations"]] == [6, "final"]
    cb.on_train_end(None, state, None)  # a second end (resumed run) does not evaluate again
    assert len(seen) == 4


@pytest.mark.parametrize("name", ["table2_sft", "table2_sft_equal_tokens", "table3_rl"])
def test_every_row_of_the_paper_table_sweeps_ends_with_the_paper_protocol(name):
    """The tables' numbers come from eval/final under eval.protocol=paper, for every row (issue 13.1)."""
    from sweeps.loader import load_sweep

    sweep = load_sweep(Path(__file__).resolve().parents[1] / "recipes" / "sweeps" / f"{name}.yaml")
    assert len(sweep.runs) >= 7
    for run in sweep.runs:
        recipe = load_recipe(run.recipe, run.recipe_overrides(Path("/sweep")))
        assert (run.name, recipe.eval.at_end, recipe.eval.final_protocol) == (run.name, True, "paper")
