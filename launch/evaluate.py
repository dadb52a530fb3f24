#!/usr/bin/env python
"""Evaluate a checkpoint on SpatialTree-Bench: python launch/evaluate.py model.name_or_path=PATH eval.bench=BENCH train.output_dir=OUT

Compare two results: python launch/evaluate.py --compare A/summary.json B/summary.json
"""

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/evaluate.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

from train.cli import main  # noqa: E402
from train.config import Recipe  # noqa: E402

COMPARE_USAGE = """
  --compare A B    print per-node scores and deltas (B - A) of two summary.json files
                   (or run directories: their eval/final, else the latest eval/step_N)"""


def _run(recipe: Recipe, flags: list[str]) -> int:
    from eval_hooks.offline import run
    from train.model_loading import load_model_and_processor

    out = Path(recipe.train.output_dir)
    if recipe.eval.bench is not None and int(os.environ.get("RANK", "0")) == 0 and not (out / "run_info.json").exists():
        from train.run_info import write_run_info  # for the run page; a training run's own files are kept

        write_run_info(recipe, out, "evaluate")
    code = run(recipe, flags, loader=load_model_and_processor)
    if code == 0 and int(os.environ.get("RANK", "0")) == 0:
        from train.report_page import write_report_at_end

        write_report_at_end(recipe.train.output_dir)
    return code


HELP = """usage: launch/evaluate.py model.name_or_path=PATH eval.bench=BENCH train.output_dir=OUT [key=value ...]
       launch/evaluate.py recipe=NAME model.name_or_path=PATH [key=value ...]
       launch/evaluate.py --compare A B
       torchrun --nproc_per_node N launch/evaluate.py ...      (the subset is sharded over the processes)

Evaluate a checkpoint on SpatialTree-Bench; results go to OUT/eval/final/ (summary.json, predictions.jsonl) and
the tree is printed with scores x100 (%).

  model.name_or_path=PATH   the checkpoint (a run directory, a Hugging Face directory or hub id)
  eval.bench=BENCH          a bench source of the registry (spatialtree_bench) or a bench file (JSONL, JSON,
                            parquet, or a folder holding test.jsonl)
  train.output_dir=OUT      where eval/final/ is written
  eval.protocol=paper       the benchmark's released lmms-eval task settings (whole benchmark); default: quick
  reward.judge.base_url=URL the LLM judge of gpteval records (or eval.judge=skip to report them missing)
  eval.lmms_eval_tasks=[spatialtreebench]
                            also run lmms-eval's own task on the checkpoint, after the project's evaluation
  eval.lmms_eval_python=PY  the interpreter that has lmms-eval (bash scripts/lmms/setup_env.sh: .venv-lmms/bin/python)
  eval.lmms_eval_data=DIR   a local copy of the task data (python -m eval_hooks.lmms_data BENCH DIR); hub offline
  recipe=NAME               start from a recipe's settings (optional; default: the schema defaults)
  key=value                 any other recipe key, e.g. eval.max_samples_per_leaf=50
  --print-config            print the fully resolved recipe as YAML and exit
  --compare A B             per-node scores and deltas (B - A) of two summary.json files, or of two run
                            directories (their eval/final, else the latest eval/step_N)
"""

if __name__ == "__main__":
    argv = sys.argv[1:]
    if any(a in ("-h", "--help") for a in argv):
        print(HELP)
        sys.exit(0)
    if "--compare" in argv and not any(a in ("-h", "--help") for a in argv):
        from eval_hooks.offline import compare_main

        sys.exit(compare_main(argv))
    sys.exit(main("launch/evaluate.py", argv, _run, extra_flags=["--compare"], extra_usage=COMPARE_USAGE))
