"""What a run says about itself: the evaluation-share line, the model card, no "share your model" after a
pre-emption (train/eval_share.py, train/model_card.py, train/run.py)."""

from __future__ import annotations

import logging
from types import SimpleNamespace

from train.eval_share import planned_evaluations, share_line


def _eval(at_start=True, every=0, at_end=True):
    return SimpleNamespace(at_start=at_start, every_steps=every, at_end=at_end)


def test_planned_evaluations_count_start_periodic_and_end_once():
    assert planned_evaluations(_eval(), 3) == 2
    assert planned_evaluations(_eval(every=100), 400) == 5  # start + 100, 200, 300, 400 (the end is 400)
    assert planned_evaluations(_eval(every=100), 450) == 6
    assert planned_evaluations(_eval(at_start=False, at_end=False), 10) == 0


def test_the_share_line_appears_above_a_quarter_only():
    line = share_line(2, 30.0, 3, 1.0, _eval())  # 60 s of evaluation vs 3 s of training: 95%
    assert line is not None and "about 95% of this run's time" in line and "2 evaluations x 30.0 s" in line
    assert share_line(2, 30.0, 1000, 1.0, _eval()) is None  # 60 s vs 1000 s: 6%


def test_the_model_card_names_the_base_model_and_the_recipe():
    from train.model_card import model_card
    from train.recipe import load_recipe

    card = model_card(load_recipe("quickstart_sft"), "SFT", 400)
    assert "base_model: tiny-qwen2.5-vl" in card and "`quickstart_sft`" in card and "400 optimizer steps" in card
    assert "None" not in card and "qs_distance" in card


def test_no_share_your_model_line_after_a_preemption():
    from train.callbacks import Preemption
    from train.run import _NoShareLine

    pre = Preemption()
    quiet = _NoShareLine(pre)
    rec = logging.LogRecord("transformers.trainer", logging.INFO, __file__, 1,
                            "\n\nTraining completed. Do not forget to share your model on huggingface.co/models =)\n\n",
                            None, None)
    assert quiet.filter(rec)  # a finished run: transformers' line stays
    pre.triggered = True
    assert not quiet.filter(rec)


def test_evaluate_help_covers_every_form_the_readme_uses():
    import re
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    helptext = subprocess.run([sys.executable, str(repo / "launch" / "evaluate.py"), "--help"], capture_output=True,
                              text=True, timeout=60).stdout
    readme = (repo / "README.md").read_text().replace("\\\n", " ")
    uses = [line for line in readme.splitlines() if "launch/evaluate.py" in line]
    assert uses
    for line in uses:
        for key in re.findall(r"\b([a-z_]+(?:\.[a-z_]+)+)=", line):
            assert f"{key}=" in helptext, (key, line)
        for flag in re.findall(r"(--[a-z-]+)", line):
            assert flag in helptext, (flag, line)
    assert "recipe=NAME [key=value ...] [--print-config]" not in helptext.splitlines()[0]


def test_console_log_lines_show_benchmark_scores_in_percent(capsys, tmp_path):
    from transformers import TrainerControl, TrainerState, TrainingArguments

    from train.console_units import PercentProgress, percent_logs

    logs = {"bench/overall": 0.001628, "bench/L1": 0.5, "bench/eval_seconds": 3.5, "train/loss": 1.25}
    assert percent_logs(logs) == {"bench/overall": "0.2 %", "bench/L1": "50.0 %", "bench/eval_seconds": 3.5,
                                  "train/loss": 1.25}
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    state, control = TrainerState(max_steps=2, is_world_process_zero=True, is_local_process_zero=True), TrainerControl()
    cb = PercentProgress()
    cb.on_train_begin(args, state, control)
    cb.on_log(args, state, control, logs=dict(logs))
    cb.on_train_end(args, state, control)
    out = capsys.readouterr()
    assert "'bench/overall': '0.2 %'" in out.out + out.err and "0.001628" not in out.out + out.err
    assert logs["bench/overall"] == 0.001628  # the caller's dict (what is logged) is not changed


def test_the_evaluation_plan_is_said_up_front_with_passes_records_and_the_keys_that_switch_it_off(tmp_path):
    """train/eval_share.evaluation_plan (printed at launch, before any model loads): which passes, over how many
    records (the evaluator's own subset), the answers generated against the samples trained, the eval.* keys."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fixtures_grpo import bench_row
    from fixtures_reliability import write_jsonl

    from train.eval_share import evaluation_plan
    from train.recipe import load_recipe

    bench = write_jsonl(tmp_path / "bench.jsonl", [bench_row(i, f"img{i}.png", answer="AB"[i % 2]) for i in range(5)])
    three_steps = load_recipe("quickstart_sft", [f"eval.bench={bench}", "train.per_device_batch_size=2"])
    line = evaluation_plan(three_steps, max_steps=3)
    assert line.startswith("evaluation plan: 2 pass(es) at start (eval.at_start), at the end (eval.at_end) over 5 "
                           f"records of eval.bench={bench}"), line
    assert "= 10 answers generated, against 3 steps x 2 = 6 samples trained: evaluation will likely take most" in line
    assert "eval.at_start=false, eval.every_steps=0, eval.at_end=false" in line and "eval.bench=null" in line
    periodic = load_recipe("quickstart_sft", [f"eval.bench={bench}", "eval.every_steps=100", "eval.at_start=false",
                                              "eval.max_samples_per_leaf=2", "train.per_device_batch_size=32"])
    line = evaluation_plan(periodic, max_steps=450)
    assert "5 pass(es) every 100 steps (eval.every_steps: 4 in 450 steps), at the end (eval.at_end) over 2 records" \
        in line, line
    assert "= 10 answers generated, against 450 steps x 32 = 14400 samples trained: the evaluations generate fewer" \
        in line
    off = load_recipe("quickstart_sft", [f"eval.bench={bench}", "eval.at_start=false", "eval.at_end=false"])
    assert evaluation_plan(off, 3) is None
    assert evaluation_plan(load_recipe("quickstart_sft", ["eval.bench=null"]), 3) is None


def test_an_evaluation_shows_a_bar_with_the_records_done(tmp_path):
    """launch/evaluate.py on the tiny model, 3 records one at a time: stderr carries the evaluation's bar counting the
    records (tqdm redraws on every record here: TQDM_MININTERVAL=0, since the real interval hides short runs)."""
    import os
    import re
    import subprocess
    import sys
    from pathlib import Path

    from PIL import Image

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from fixtures_grpo import bench_row
    from fixtures_reliability import child_env, write_jsonl

    repo = Path(__file__).resolve().parents[1]
    for i in range(3):
        Image.new("RGB", (56, 56), (40 * i, 90, 200)).save(tmp_path / f"img{i}.png")
    bench = write_jsonl(tmp_path / "bench.jsonl", [bench_row(i, f"img{i}.png", answer="AB"[i % 2]) for i in range(3)])
    env = {**child_env(), "TQDM_MININTERVAL": "0"}
    proc = subprocess.run([sys.executable, str(repo / "launch" / "evaluate.py"), "model.name_or_path=tiny-qwen2.5-vl",
                           f"eval.bench={bench}", f"train.output_dir={tmp_path / 'out'}", "eval.batch_size=1",
                           "eval.max_new_tokens=2", "train.num_threads=1"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    done = [int(n) for n in re.findall(r"bench eval \(step \w+\):.*?\b([0-3])/3\b", proc.stderr)]
    assert done and max(done) == 3 and sorted(set(done)) == [0, 1, 2, 3], proc.stderr[-2000:]
    assert os.path.isfile(tmp_path / "out" / "eval" / "final" / "summary.json")
