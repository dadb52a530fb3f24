"""lmms-eval 0.7.3 itself on the tiny checkpoint: ``eval.lmms_eval_tasks=[spatialtreebench]`` runs the released
task, unchanged, through the project's launcher path, and its per-record scores equal the in-process evaluator's.

lmms-eval lives in ``.venv-lmms`` (scripts/lmms/setup_env.sh: lmms-eval and a few light packages on top of .venv;
~55 s once, ~0.1 s when complete). The task reads a local copy of the engine stand-in bench in the layout it reads
from the hub (eval_hooks/lmms_data.py, ``eval.lmms_eval_data``). ``eval_hooks.offline.run`` (what
``launch/evaluate.py`` runs) evaluates the checkpoint in-process, then starts lmms-eval on it with
``LmmsEvalLauncher`` and waits; both decode greedily, one record at a time, on one thread.

What the comparison has to hold equal (found by running it; docs/EVAL.md, "lmms-eval itself in make test"):

- the model wrapper: lmms-eval 0.7.3 resolves ``--model qwen2_5_vl`` to its *chat* wrapper
  (``models/chat/qwen2_5_vl.py``: no JPEG re-encode, qwen-vl-utils' default pixel limits, then the processor's)
  unless ``--force_simple``; ``eval.inputs=lmms_eval`` reproduces the *simple* wrapper the docs cite
  (``models/simple/qwen2_5_vl.py``), so the run passes ``--force_simple``;
- precision: lmms-eval's ``qwen2_5_vl`` loads the weights in bfloat16 whatever the device (``model_kwargs``,
  ``torch_dtype: "bfloat16"``), the project's loader gives fp32 on a CPU, and the tiny model's logits are near ties
  (untrained: 10 of these 27 greedy replies differ between fp32 and bf16 on this machine). The in-process side here loads the same weights in bfloat16 (on a GPU both are bf16);
- a reply is stripped before the metric in lmms-eval (``ConfigurableTask.process_results``); the evaluator now
  does the same (eval_hooks/scoring.py).

The checkpoint: an MCQ reply without a parsable letter is scored with a *random* letter by the public scorer
(``rule_metrics.multichoiceeval``: ``random.choice(all_choices)``) and 0 by the project (docs/REWARDS.md: a reward
must be deterministic), and the untrained tiny model writes no letters. So the run uses a copy of the tiny checkpoint
whose ``generation_config.json`` suppresses every token but ``A`` and ``B`` (``suppress_tokens``, which both
harnesses' ``generate`` apply): the model picks between A and B by its own logits, every reply parses, and every
record's score is deterministic on both sides.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from fixtures_side_env import side_env

from eval_hooks.io import read_json

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
LMMS_PY = REPO / ".venv-lmms" / "bin" / "python"
NEW_TOKENS = 8
PER_TASK = 3  # engine bench_all: 9 tasks (7 leaves of L1, one of L2, L3 and L4 each) -> 27 records


def lmms_env() -> Path:
    """lmms-eval's interpreter (tests/fixtures_side_env.py)."""
    return side_env("lmms", timeout=1200)


@pytest.fixture(scope="module")
def bench(tmp_path_factory) -> tuple[Path, Path]:
    """The engine stand-in bench (public schema) and its local copy in the layout lmms-eval's task reads."""
    from data_mix.engine import write_task
    from eval_hooks.lmms_data import write_task_copy

    out = tmp_path_factory.mktemp("lmms_bench")
    path = Path(write_task("bench_all", PER_TASK, 0, out, fmt="bench", progress=False)["files"]["bench"])
    done = write_task_copy(path, out / "hf")
    assert done["records"] == 9 * PER_TASK
    return path, out / "hf"


@pytest.fixture(scope="module")
def checkpoint(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny checkpoint, with a generation_config.json that lets greedy decoding write only A and B."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("tiny_ab")
    for f in Path(tiny_model_dir).iterdir():
        if f.name != "generation_config.json":
            (out / f.name).symlink_to(f)
    gen = json.loads((Path(tiny_model_dir) / "generation_config.json").read_text())
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    keep = set(tok.convert_tokens_to_ids(["A", "B"]))
    gen["suppress_tokens"] = [i for i in range(len(tok)) if i not in keep]
    (out / "generation_config.json").write_text(json.dumps(gen))
    return out


def _bf16_loader(model_cfg, device="auto"):
    """The weights as lmms-eval's qwen2_5_vl loads them: ``from_pretrained(..., torch_dtype="bfloat16")`` with the
    default (sdpa) attention; the processor from the project's loader. (Not an fp32 model cast with
    ``.to(bfloat16)``: that also casts the rotary ``inv_freq`` buffers, which ``from_pretrained`` keeps in fp32.)"""
    import torch
    from transformers import AutoModelForImageTextToText

    from train.model_loading import load_processor, resolve_model_path

    path = resolve_model_path(model_cfg.name_or_path)
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=torch.bfloat16).eval()
    return model.to("cpu"), load_processor(model_cfg)


@pytest.fixture(scope="module")
def both(bench, checkpoint, tmp_path_factory) -> dict:
    """One ``launch/evaluate.py`` run (``eval_hooks.offline.run``): the in-process evaluation, then lmms-eval."""
    import time

    from eval_hooks.lmms import samples_of
    from eval_hooks.offline import run
    from train.recipe import load_recipe

    python = lmms_env()
    bench_file, hf_home = bench
    out = tmp_path_factory.mktemp("lmms_run")
    recipe = load_recipe(None, [
        f"model.name_or_path={checkpoint}", f"eval.bench={bench_file}", f"train.output_dir={out}",
        "train.num_threads=1", "eval.protocol=paper", "eval.do_sample=false", "eval.repeats=1",
        f"eval.max_new_tokens={NEW_TOKENS}", "eval.batch_size=1", "eval.weights=lmms_eval",
        "eval.lmms_eval_tasks=[spatialtreebench]", f"eval.lmms_eval_python={python}",
        f"eval.lmms_eval_data={hf_home}", "eval.lmms_eval_model_args=device=cpu,device_map=cpu",
        f'eval.lmms_eval_args=[--force_simple,--gen_kwargs,"temperature=0,max_new_tokens={NEW_TOKENS}"]'])
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"  # lmms-eval's process on one thread too: the same bf16 kernels
    try:
        start = time.time()
        code = run(recipe, [], loader=_bf16_loader)
        seconds = time.time() - start
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    lmms_dir = out / "eval" / "lmms_eval" / "final"
    assert code == 0, (lmms_dir / "lmms_eval.log").read_text()[-3000:]
    ours = [json.loads(x) for x in (out / "eval" / "final" / "predictions.jsonl").read_text().splitlines()]
    results = json.loads(sorted(lmms_dir.glob("*/*_results.json"))[-1].read_text())
    return {"out": out, "bench": bench_file, "ours": ours, "lmms": samples_of(lmms_dir, "spatialtreebench"),
            "results": results, "command": read_json(lmms_dir / "command.json"), "seconds": seconds}


def _pairs(both) -> list[tuple[dict, dict, dict]]:
    """(bench row, lmms-eval's sample, our record) per document: lmms-eval's doc_id is the row of the copy."""
    rows = [json.loads(x) for x in Path(both["bench"]).read_text().splitlines()]
    ours = {int(r["where"].rsplit(":", 1)[1]) - 1: r for r in both["ours"]}  # where = file:line (1-based)
    return [(rows[s["doc_id"]], s, ours[s["doc_id"]]) for s in both["lmms"]]


def test_lmms_eval_ran_the_released_task_on_the_local_copy(both):
    argv = both["command"]["argv"]
    assert argv[:3] == [str(LMMS_PY), "-m", "lmms_eval"]
    assert argv[argv.index("--model") + 1] == "qwen2_5_vl"  # eval.lmms_eval_model=auto: the checkpoint's family
    assert argv[argv.index("--tasks") + 1] == "spatialtreebench"
    cfg = both["results"]["configs"]["spatialtreebench"]
    assert cfg["dataset_path"] == "LongfeiLi/SpatialTree-Bench"  # the released task's YAML, not a local variant
    assert cfg["test_split"] == "test" and cfg["process_results"].startswith("<function spatialtreebench_process")
    gen = cfg["generation_kwargs"]
    assert (gen["temperature"], gen["max_new_tokens"], gen["num_beams"]) == (0, NEW_TOKENS, 1)  # greedy
    assert len(both["lmms"]) == len(both["ours"]) == 9 * PER_TASK
    print(f"\nin-process evaluation + lmms-eval: {both['seconds']:.1f} s")


def test_same_records_same_prompts_same_greedy_replies(both):
    for row, sample, ours in _pairs(both):
        assert ours["id"] == row["session_id"] and sample["target"] == ours["answer"] == row["answer"]
        tags = json.loads(row["extra_info"])
        assert ours["leaf"].replace(" ", "") == "/".join(tags[f"spatree{i}"] for i in range(3))
        assert sample["input"] == ours["prompt"]  # lmms-eval's doc_to_text = the project's bench prompt
        assert sample["input_media"] == row["image"] == [os.path.relpath(p, Path(both["bench"]).parent)
                                                          for p in ours["images"]]
        # lmms-eval logs the reply stripped (its process_results strips before the metric)
        assert sample["filtered_resps"] == ours["response"].strip(), (row["session_id"], sample, ours)


def test_per_record_scores_equal_the_in_process_evaluators(both):
    scores = []
    for row, sample, ours in _pairs(both):
        theirs = float(sample["SpaTreeBench"]["score"])
        assert not (ours.get("details") or {}).get("unparsed"), ours  # no record left to lmms-eval's random guess
        assert ours["score"] == pytest.approx(theirs, abs=1e-9), (row["session_id"], sample, ours)
        scores.append((ours["metricfunc"], ours["score"]))
    mcq = [s for m, s in scores if m == "multichoiceeval"]
    assert 0 < sum(mcq) < len(mcq)  # right and wrong answers: equal scores that could have differed
    assert {m for m, _ in scores} >= {"multichoiceeval", "gravityeval", "agenticnaveval", "meanrelativeacc"}
    print(f"\n{len(scores)} records, scores equal on every one ({sum(mcq):.0f} of {len(mcq)} MCQs right)")


def test_lmms_eval_aggregate_is_the_project_tree_over_its_own_record_scores(both):
    """lmms-eval's SpaTreeBench number is the project's reference-mode, lmms_eval-weighted tree over the same
    per-record scores, and so our own summary's root."""
    from eval_hooks.tree import aggregate_records

    theirs = [{"leaf": ours["leaf"], "score": float(s["SpaTreeBench"]["score"])} for _, s, ours in _pairs(both)]
    root = aggregate_records(theirs, "reference", "lmms_eval").scores[""]
    assert root == pytest.approx(both["results"]["results"]["spatialtreebench"]["SpaTreeBench,none"], abs=1e-9)
    summary = read_json(both["out"] / "eval" / "final" / "summary.json")
    assert (summary["mode"], summary["weights"], summary["settings"]["do_sample"]) == ("reference", "lmms_eval", False)
    assert summary["overall"] == pytest.approx(root, abs=1e-9) and root > 0
