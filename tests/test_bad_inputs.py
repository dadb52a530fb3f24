"""A corpus of bad inputs fed to the REAL launchers (subprocesses, as a user types them): recipe keys, paths, a rerun
over a different run, bench files, GRPO rows, sweeps, the data report, a signal. For each: the exit code, exactly
one ``prog: error: ...`` line naming the file / row / key (no traceback), and the earlier output in the output
directory untouched. Most cases fail before any model loads, so they take about a second each.

docs/RELIABILITY.md lists this corpus; its table is generated from :data:`CASES` (``python tests/test_bad_inputs.py
--write-docs``) and a test checks that it is current."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


@dataclass(frozen=True)
class Case:
    id: str
    kind: str
    launcher: str
    args: tuple[str, ...]
    code: int
    says: str
    """A regular expression the one error line must match (after ``prog: error:``)."""


SFT = ("data.root={root}", "data.registry={reg}", "mix.groups.all.sources=[rel_train]", "mix.upsample=true",
       "eval.bench=null", "data.decontaminate=off", "train.output_dir={out}", "train.max_steps=2", "train.per_device_batch_size=2",
       "train.num_threads=1", "train.report_to=[jsonl]", "data.max_length=512", "train.save_steps=1")
GRPO = ("data.root={root}", "data.registry={reg}", "mix.groups.rl.sources=[rl_good]", "eval.bench=null", "data.decontaminate=off",
        "train.output_dir={out}", "grpo.num_generations=2", "train.per_device_batch_size=2", "train.max_steps=1",
        "grpo.max_prompt_length=4096", "--dry-run")
# A source with one ~100k-token row (file row 2) beside a good one, planned in tokens without mix.upsample: the row's
# tokens once inflated its source's mean and the plan blamed "not enough data" on the other group.
LONG = ("mix.upsample=false", "mix.unit=tokens", "mix.groups.all.sources=[rel_long]", "mix.groups.gen.sources=[rel_train]",
        "mix.budget.group=all")
TOO_LONG = r"long\.jsonl, row 2: too_long: row is \d{2,3},\d{3} tokens, data\.max_length is 512"
EVAL = ("model.name_or_path=tiny-qwen2.5-vl", "data.root={root}", "data.registry={reg}", "train.output_dir={out}")


def case(id, kind, launcher, args, code, says):
    return Case(id, kind, launcher, tuple(args), code, says)


CASES: list[Case] = [
    # recipe keys: exit 2 naming the key
    case("batch_size_negative", "recipe", "sft", [*SFT, "train.per_device_batch_size=-1"], 2,
         r"train\.per_device_batch_size=-1 must be in \[1, inf\)"),
    case("grad_accum_zero", "recipe", "sft", [*SFT, "train.grad_accum=0"], 2, r"train\.grad_accum=0 must be in \[1, inf\)"),
    case("lr_zero", "recipe", "sft", [*SFT, "optim.lr=0"], 2, r"optim\.lr=0\.0 must be in \(0, inf\)"),
    case("lr_negative", "recipe", "sft", [*SFT, "optim.lr=-1e-5"], 2, r"optim\.lr=-1e-05 must be in \(0, inf\)"),
    case("lr_not_a_number", "recipe", "sft", [*SFT, "optim.lr=fast"], 2, r"optim\.lr"),
    case("warmup_ratio_above_one", "recipe", "sft", [*SFT, "optim.warmup_ratio=1.5"], 2, r"optim\.warmup_ratio=1\.5"),
    case("betas_out_of_range", "recipe", "sft", [*SFT, "optim.betas=[0.9,1.5]"], 2, r"optim\.betas"),
    case("max_length_zero", "recipe", "sft", [*SFT, "data.max_length=0"], 2, r"data\.max_length=0 must be in \[1, inf\)"),
    case("max_steps_zero", "recipe", "sft", [*SFT, "train.max_steps=0"], 2, r"train\.max_steps=0"),
    case("save_steps_negative", "recipe", "sft", [*SFT, "train.save_steps=-5"], 2, r"train\.save_steps=-5"),
    case("skip_fraction_above_one", "recipe", "sft", [*SFT, "data.max_skip_fraction=2"], 2,
         r"data\.max_skip_fraction=2"),
    case("lora_rank_zero", "recipe", "sft", [*SFT, "model.lora.r=0"], 2, r"model\.lora\.r=0"),
    case("unknown_key", "recipe", "sft", [*SFT, "train.bath_size=8"], 2, r"unknown key 'train\.bath_size'"),
    case("bad_choice", "recipe", "sft", [*SFT, "optim.scheduler=cosinus"], 2, r"optim\.scheduler='cosinus'"),
    case("override_not_yaml", "recipe", "sft", [*SFT, "optim.betas=[0.9,"], 2, r"cannot parse overrides"),
    case("unknown_recipe", "recipe", "sft", ["recipe=no_such_recipe"], 2, r"unknown recipe 'no_such_recipe'"),
    case("unknown_flag", "recipe", "sft", [*SFT, "--fast"], 2, r"unknown option '--fast'"),
    case("grpo_one_generation", "recipe", "grpo", [*GRPO, "grpo.num_generations=1"], 2, r"grpo\.num_generations=1"),
    case("grpo_top_p_zero", "recipe", "grpo", [*GRPO, "grpo.top_p=0"], 2, r"grpo\.top_p=0"),
    case("grpo_temperature_zero", "recipe", "grpo", [*GRPO, "grpo.temperature=0"], 2, r"grpo\.temperature=0"),
    case("eval_batch_zero", "recipe", "evaluate", [*EVAL, "eval.bench={bench}/good.jsonl", "eval.batch_size=0"], 2,
         r"eval\.batch_size=0"),
    # paths: exit 2 naming the key and the path
    case("data_root_missing", "path", "sft", [*SFT, "data.root={tmp}/no_such_dir"], 2, r"data\.root=.*no_such_dir"),
    case("output_dir_is_a_file", "path", "sft", [*SFT, "train.output_dir={file}"], 2,
         r"train\.output_dir=.*is a file"),
    case("output_dir_under_a_file", "path", "sft", [*SFT, "train.output_dir={file}/run"], 2,
         r"train\.output_dir=.*cannot be created"),
    case("output_dir_not_writable", "path", "sft", [*SFT, "train.output_dir=/proc/spatialtree/run"], 2,
         r"train\.output_dir=.*not writable"),
    case("registry_missing", "path", "sft", [*SFT, "data.registry={tmp}/nope.yaml"], 2, r"nope\.yaml"),
    case("deepspeed_config_missing", "path", "sft", [*SFT, "train.deepspeed={tmp}/ds.json"], 2,
         r"train\.deepspeed=.*ds\.json"),
    case("model_path_missing", "path", "evaluate", [*EVAL, "eval.bench={bench}/good.jsonl",
                                                    "model.name_or_path={tmp}/no_model"], 2,
         r"model\.name_or_path=.*no_model.* does not exist"),
    case("bench_file_missing", "path", "evaluate", [*EVAL, "eval.bench={tmp}/no_bench.jsonl"], 2,
         r"eval\.bench=.*no_bench\.jsonl"),
    # a rerun into a directory that holds a run of another recipe: exit 2 naming the keys and the choices
    case("rerun_different_recipe", "rerun", "sft", [*SFT, "train.output_dir={prev}", "optim.lr=0.5"], 2,
         r"holds a run of a different recipe .*checkpoint-2.*optim\.lr.*train\.resume=never"),
    # bench files: exit 1 naming file and row
    *[case(f"bench_{kind}", "bench file", "evaluate", [*EVAL, f"eval.bench={{bench}}/{kind}.jsonl"], 1,
           rf"{kind}\.jsonl, row 2: .*{says}") for kind, says in [
        ("unknown_metric", r"unknown metricfunc 'frobnicateeval'"),
        ("unknown_leaf", r"bad_record: .*Teleportation"),
        ("letter_not_an_option", r"answer 'D' is not one of the options' letters A, B"),
        ("null_answer", r"answer is null"),
        ("dict_answer", r"answer is a dict"),
        ("malformed_json", r"malformed_json"),
        ("no_question", r"no 'question'"),
        ("judge_not_yes_no", r"answer 'maybe' is not yes or no"),
    ]],
    # GRPO rows: exit 1 naming file and row, before the model (or processor) loads
    *[case(f"grpo_row_{kind}", "GRPO row", "grpo", [*GRPO, f"mix.groups.rl.sources=[rl_{kind}]"], 1,
           rf"rl_{kind}\.jsonl, row 2: .*{says}") for kind, says in [
        ("null_answer", r"answer is null"),
        ("dict_answer", r"answer is a dict"),
        ("letter_not_an_option", r"answer 'D' is not one of the options' letters A, B"),
        ("unknown_metric", r"unknown metricfunc 'frobnicateeval'"),
        ("number_not_a_number", r"answer 'far' is not a number"),
    ]],
    case("data_report_grpo_row", "data report", "data_report",
         ["recipe=quickstart_grpo", "data.root={root}", "data.registry={reg}", "mix.groups.rl.sources=[rl_null_answer]",
          "eval.bench=null", "--tokenizer=none"], 1, r"rl_null_answer\.jsonl, row 2: .*answer is null"),
    case("data_report_unknown_option", "data report", "data_report", ["recipe=quickstart_sft", "--fast"], 2,
         r"unknown option '--fast'"),
    # sweeps: exit 2 naming the file / run / key
    case("sweep_missing", "sweep", "sweep", ["{tmp}/no_sweep.yaml", "--dry-run"], 2, r"no_sweep\.yaml"),
    case("sweep_yaml_syntax", "sweep", "sweep", ["{sweeps}/syntax.yaml", "--dry-run"], 2, r"syntax\.yaml"),
    case("sweep_unknown_key", "sweep", "sweep", ["{sweeps}/unknown_key.yaml", "--dry-run"], 2, r"train\.bath_size"),
    case("sweep_out_of_range", "sweep", "sweep", ["{sweeps}/out_of_range.yaml", "--dry-run"], 2,
         r"optim\.lr=-1\.0 must be in \(0, inf\)"),
    # other launchers
    case("curve_missing_run", "path", "curve", ["{tmp}/no_run"], 2, r"no_run"),
    case("compare_missing_summary", "path", "evaluate", ["--compare", "{prev}", "{tmp}/nowhere"], 2, r"nowhere"),
    case("quickstart_data_into_a_file", "path", "quickstart_data", ["{file}"], 1, r"NotADirectoryError: .*a_file"),
    case("standin_into_a_file", "path", "engine", ["--standin", "{file}"], 1, r"a_file"),
    case("merge_lora_missing_base", "path", "merge_lora",
         ["--base", "{tmp}/no_base", "--adapter", "{tmp}/no_adapter", "--out", "{tmp}/merged"], 1, r"no_base"),
    # SFT data rows: every row is read and checked before the model loads (data_mix/rowcheck.py)
    case("sft_row_malformed_json", "data row", "sft", [*SFT, "mix.groups.all.sources=[rel_broken]"], 1,
         r"broken\.jsonl, row 2: malformed_json"),
    case("sft_row_100k_tokens", "data row", "sft", [*SFT, *LONG], 1, TOO_LONG),
    case("sft_row_100k_tokens_dry_run", "data row", "sft", [*SFT, *LONG, "--dry-run"], 1, TOO_LONG),
    case("data_report_100k_tokens", "data report", "data_report",
         ["recipe=quickstart_sft", "data.root={root}", "data.registry={reg}", "mix.groups.quickstart.sources=[rel_long]",
          "mix.budget.unit=epochs", "mix.budget.value=1", "data.max_length=512", "eval.bench=null", "--no-progress"], 1,
         TOO_LONG),

    # a signal: Ctrl-C mid-training is one line, exit 130, and the complete checkpoints stay
    case("sigint_mid_training", "signal", "sft", [*SFT, "train.max_steps=5000", "train.save_steps=1"], 130,
         r"interrupted \(Ctrl-C\); complete checkpoints are kept"),
]


# ---------------------------------------------------------------------------- the shared data

def _bench_rows(bad: dict | str | None, leaf_bad: bool = False) -> list:
    from fixtures_grpo import bench_row

    rows: list = [bench_row(0, "img0.png"), bench_row(1, "img1.png", answer="B"), bench_row(2, "img2.png")]
    if bad is not None:
        rows[1] = bad
    return rows


def _bad_record(kind: str):
    from fixtures_grpo import bench_row

    good = bench_row(1, "img1.png", answer="B")
    if kind == "unknown_metric":
        return bench_row(1, "img1.png", metric="frobnicateeval")
    if kind == "unknown_leaf":
        extra = json.loads(good["extra_info"])
        return {**good, "extra_info": json.dumps({**extra, "spatree2": "Teleportation"})}
    if kind == "letter_not_an_option":
        return {**good, "answer": "D"}
    if kind == "null_answer":
        return {**good, "answer": None}
    if kind == "dict_answer":
        return {**good, "answer": {"letter": "A"}}
    if kind == "malformed_json":
        return '{"question": "broken'
    if kind == "no_question":
        return {k: v for k, v in good.items() if k != "question"}
    if kind == "judge_not_yes_no":
        return bench_row(1, "img1.png", metric="judge", answer="maybe")
    if kind == "number_not_a_number":
        return {**bench_row(1, "img1.png", answer="far"), "question_type": "open"}
    raise KeyError(kind)


LONG_TEXT = "describe the scene in detail " * 7150
"""About 100k tokens with the tiny model's tokenizer (14 tokens per repetition)."""


def long_row() -> dict:
    """An SFT (LLaVA) row whose question is ~100k tokens."""
    return {"id": "huge", "image": "img0.png", "conversations": [
        {"from": "human", "value": "<image>\n" + LONG_TEXT}, {"from": "gpt", "value": "red"}]}


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    """Data every case reads: an LLaVA corpus, bench files and GRPO sources (one bad row each), sweeps, a previous
    run. Paths by placeholder name."""
    import yaml
    from fixtures_reliability import write_corpus, write_jsonl

    from train import checkpoint as ckpt
    from train.recipe import load_recipe, to_yaml

    tmp = tmp_path_factory.mktemp("bad_inputs")
    root = tmp / "data"
    write_corpus(root, n_good=12)
    reg = yaml.safe_load((root / "registry.yaml").read_text())
    from fixtures_reliability import good_rows

    write_jsonl(root / "broken.jsonl", [good_rows(1)[0], '{"id": "broken", "image": ', *good_rows(3)])
    reg["sources"]["rel_broken"] = {**reg["sources"]["rel_train"], "files": ["broken.jsonl"]}
    write_jsonl(root / "long.jsonl", [good_rows(1)[0], long_row(), *good_rows(5)[1:]])
    reg["sources"]["rel_long"] = {**reg["sources"]["rel_train"], "files": ["long.jsonl"]}
    bench = tmp / "bench"
    write_jsonl(bench / "good.jsonl", _bench_rows(None))
    kinds = ["unknown_metric", "unknown_leaf", "letter_not_an_option", "null_answer", "dict_answer", "malformed_json",
             "no_question", "judge_not_yes_no", "number_not_a_number"]
    for kind in kinds:
        write_jsonl(bench / f"{kind}.jsonl", _bench_rows(_bad_record(kind)))
    for kind in ["good", *kinds]:
        rows = _bench_rows(None if kind == "good" else _bad_record(kind))
        write_jsonl(root / f"rl_{kind}.jsonl", rows)
        reg["sources"][f"rl_{kind}"] = {"format": "bench", "files": [f"rl_{kind}.jsonl"], "media_root": "media",
                                        "modality": "image"}
    (root / "registry.yaml").write_text(yaml.safe_dump(reg))
    sweeps = tmp / "sweeps"
    sweeps.mkdir()
    (sweeps / "syntax.yaml").write_text("name: s\nruns: [\n")
    for name, key in [("unknown_key", "train.bath_size: 8"), ("out_of_range", "optim.lr: -1.0")]:
        (sweeps / f"{name}.yaml").write_text(
            f"name: {name}\ndefaults:\n  launcher: sft\n  overrides:\n    data.root: {root}\n"
            f"    data.registry: {root / 'registry.yaml'}\n    eval.bench: null\n"
            f"runs:\n  - {{name: a, recipe: quickstart_sft, overrides: {{{key}}}}}\n")
    file = tmp / "a_file"
    file.write_text("not a directory\n")
    # A previous run of the SFT base recipe, with a complete checkpoint (the rerun case must leave it whole).
    prev = tmp / "prev_run"
    values = {"root": root, "reg": root / "registry.yaml", "out": prev}
    recipe = load_recipe(None, [a.format(**values) for a in SFT])
    prev.mkdir()
    (prev / "recipe.yaml").write_text(to_yaml(recipe))
    (prev / "checkpoint-2").mkdir()
    ckpt.atomic_write_json(prev / "checkpoint-2" / ckpt.MARKER, {"step": 2})
    (prev / "eval" / "final").mkdir(parents=True)
    (prev / "eval" / "final" / "summary.json").write_text("{}")
    return {"tmp": tmp, "root": root, "reg": root / "registry.yaml", "bench": bench, "sweeps": sweeps, "file": file,
            "prev": prev}


def _snapshot(path: Path) -> dict[str, tuple[bytes, float]]:
    return {str(p.relative_to(path)): (p.read_bytes(), p.stat().st_mtime) for p in sorted(path.rglob("*")) if p.is_file()}


def _launch(c: Case, world: dict, out: Path) -> subprocess.Popen:
    from fixtures_reliability import child_env

    args = [a.format(**world, out=out) for a in c.args]
    return subprocess.Popen([sys.executable, str(REPO / "launch" / f"{c.launcher}.py"), *args], cwd=world["tmp"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env())


@pytest.mark.parametrize("c", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_with_its_exit_code_and_loses_nothing(c: Case, world, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "earlier_output.txt").write_text("an earlier result that must survive\n")
    before, prev_before = _snapshot(out), _snapshot(world["prev"])
    proc = _launch(c, world, out)
    if c.kind == "signal":
        deadline = time.time() + 240
        while not list(out.glob("checkpoint-*/COMPLETE")):  # retention may already have removed checkpoint-1
            assert proc.poll() is None and time.time() < deadline, "the run ended before it could be interrupted"
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=300)
    prog = f"launch/{c.launcher}.py"
    assert proc.returncode == c.code, f"exit {proc.returncode}, expected {c.code}\n{stderr[-3000:]}"
    assert "Traceback" not in stderr + stdout, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith(f"{prog}: error:")]
    assert len(lines) == 1, f"expected one '{prog}: error:' line, got {lines}\n{stderr[-2000:]}"
    assert re.search(c.says, lines[0]), f"{lines[0]!r} does not match {c.says!r}"
    after = _snapshot(out)
    assert {k: v for k, v in after.items() if k in before} == before, "an earlier output in output_dir changed"
    assert _snapshot(world["prev"]) == prev_before, "the previous run was changed"
    if c.kind != "signal":  # every bad input is found before a model loads
        assert "trainable parameters per group" not in stdout and "Loading weights" not in stderr, stderr[-2000:]
    if c.kind == "signal":
        assert list(out.glob("checkpoint-*/COMPLETE"))


def test_grpo_dry_run_under_skip_counts_the_bad_rows_by_file_and_row_and_says_the_summary_once(world, tmp_path):
    """The same bad GRPO row under data.on_bad_sample=skip: exit 0, named in the pre-load line and counted in the
    prompt summary (printed once), never trained on; the evaluation plan is said up front."""
    c = Case("skip", "GRPO row", "grpo", (*GRPO, "mix.groups.rl.sources=[rl_good,rl_null_answer]",
                                          "data.on_bad_sample=skip", "data.max_skip_fraction=1",
                                          "eval.bench={bench}/good.jsonl"), 0, "")
    proc = _launch(c, world, tmp_path / "out")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-3000:]
    text = stdout + stderr
    assert re.search(r"source rl_null_answer: 1 of 3 records cannot be scored and are left out .*"
                     r"rl_null_answer\.jsonl, row 2: bad_record: the answer is null", text), text[-3000:]
    summaries = [line for line in text.splitlines() if re.search(r"\d+ GRPO prompts \(levels", line)]
    assert len(summaries) == 1, summaries
    assert summaries[0].startswith("5 GRPO prompts") and "bad_record: 1" in summaries[0]
    assert "rl_null_answer.jsonl, row 2" in summaries[0]
    # what the evaluations will cost, said before any model loads (GRPO too)
    assert re.search(r"evaluation plan: 2 pass\(es\) at start \(eval\.at_start\), at the end \(eval\.at_end\) over 3 "
                     r"records .* = 6 answers generated, against 1 steps x 2 = 2 samples trained: evaluation will likely "
                     r"take most", text), text[-3000:]
    assert "trainable parameters per group" not in text


def test_sft_dry_run_under_skip_counts_the_long_row_plans_the_mix_and_says_the_evaluation_plan(world, tmp_path):
    """The ~100k-token row under data.on_bad_sample=skip, planned in tokens without mix.upsample: ``--dry-run`` exits 0
    before any model loads; the row check counts it by file, row and reason; the plan is made without blaming "not
    enough data"; a 3-step run is told up front that evaluation will take most of its time; nothing is written."""
    c = Case("skip", "data row", "sft", (*SFT, *LONG, "data.on_bad_sample=skip", "data.max_skip_fraction=0.5",
                                         "train.max_steps=3", "eval.bench={bench}/good.jsonl", "--dry-run"), 0, "")
    out = tmp_path / "out"
    proc = _launch(c, world, out)
    stdout, stderr = proc.communicate(timeout=300)
    text = stdout + stderr
    assert proc.returncode == 0, stderr[-3000:]
    assert re.search(r"checked every training row before the model loads: 18 rows of 2 source\(s\), 1 bad "
                     r"\(too_long: 1\), skipped whenever drawn \(data\.on_bad_sample=skip\); first: .*" + TOO_LONG, text), \
        text[-3000:]
    assert "not enough data" not in text
    assert re.search(r"evaluation plan: 2 pass\(es\) at start \(eval\.at_start\), at the end \(eval\.at_end\) over 3 "
                     r"records .* = 6 answers generated, against 3 steps x 2 = 6 samples trained: evaluation will "
                     r"likely take most of this run's time\. Switch off: eval\.at_start=false", text), text[-3000:]
    assert "dry run: 3 steps planned" in text
    assert "trainable parameters per group" not in text and "Loading weights" not in text and not out.exists()


# ---------------------------------------------------------------------------- the documentation

DOC = REPO / "docs" / "RELIABILITY.md"
BEGIN, END = "<!-- bad-inputs:begin (generated: python tests/test_bad_inputs.py --write-docs) -->", "<!-- bad-inputs:end -->"


def docs_table() -> str:
    rows = ["| case | kind | launcher | exit | the one line says (regular expression) |", "| --- | --- | --- | --- | --- |"]
    for c in CASES:
        says = c.says.replace("|", "\\|")
        rows.append(f"| `{c.id}` | {c.kind} | `launch/{c.launcher}.py` | {c.code} | `{says}` |")
    return "\n".join([BEGIN, *rows, END])


def test_reliability_doc_lists_the_corpus():
    text = DOC.read_text()
    assert BEGIN in text and END in text, "docs/RELIABILITY.md has no generated corpus table"
    current = text[text.index(BEGIN):text.index(END) + len(END)]
    assert current == docs_table(), "docs/RELIABILITY.md is stale: python tests/test_bad_inputs.py --write-docs"
    assert len(CASES) >= 40


if __name__ == "__main__" and "--write-docs" in sys.argv:
    text = DOC.read_text()
    if BEGIN in text:
        text = text[:text.index(BEGIN)] + docs_table() + text[text.index(END) + len(END):]
    else:
        text += "\n" + docs_table() + "\n"
    DOC.write_text(text)
    print(f"wrote {len(CASES)} cases to {DOC}")
