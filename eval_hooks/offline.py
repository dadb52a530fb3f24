"""Offline evaluation of any checkpoint, and comparison of two results.

    python launch/evaluate.py model.name_or_path=PATH eval.bench=BENCH train.output_dir=OUT
    torchrun --nproc_per_node 8 launch/evaluate.py ...          # the subset is sharded over ranks
    python launch/evaluate.py --compare A/summary.json B/summary.json

The evaluation is the training callback's (:class:`eval_hooks.evaluator.BenchEvaluator`): same
subset, same generation, same scoring. Results go to ``OUT/eval/final/`` (``predictions.jsonl``,
then ``summary.json``: its presence marks a finished evaluation for the sweep tool).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from eval_hooks import layout
from eval_hooks.io import read_json
from eval_hooks.tree import format_compare, format_tree

log = logging.getLogger(__name__)

Loader = Callable[..., tuple[Any, Any]]  # (ModelConfig, device=...) -> (model, processor)


def _default_loader(model_cfg: Any, device: str = "auto") -> tuple[Any, Any]:
    """Plain transformers loading (launch/evaluate.py passes train.model_loading's loader instead)."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    model = AutoModelForImageTextToText.from_pretrained(model_cfg.name_or_path).to(device)
    return model, AutoProcessor.from_pretrained(model_cfg.name_or_path)


def _init_distributed(device: str) -> str:
    """Under torchrun: join the process group and pick this rank's device; returns the device."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    import torch
    import torch.distributed as dist

    use_cuda = device in ("auto", "cuda") and torch.cuda.is_available()
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    if use_cuda:
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return f"cuda:{local}"
    return "cpu" if device == "auto" else device


def evaluate_checkpoint(recipe: Any, loader: Loader | None = None, out_dir: str | Path | None = None):
    """Evaluate ``recipe.model`` on ``recipe.eval`` (collective under torchrun); returns the EvalResult."""
    from eval_hooks.evaluator import BenchEvaluator

    if recipe.train.num_threads is not None:
        import torch

        torch.set_num_threads(recipe.train.num_threads)
    device = _init_distributed(recipe.train.device)
    evaluator = BenchEvaluator(recipe.eval, recipe.data, model_name=recipe.model.name_or_path,
                               judge=recipe.reward.judge)
    _ = evaluator.subset  # read the bench before loading the model: a wrong path fails in a second
    model, processor = (loader or _default_loader)(recipe.model, device=device)
    out = Path(out_dir) if out_dir is not None else layout.eval_dir(recipe.train.output_dir, layout.FINAL)
    return evaluator.evaluate(model, processor, out, step="final")


def run(recipe: Any, flags: Sequence[str], loader: Loader | None = None) -> int:
    """``launch/evaluate.py``: evaluate, print the tree, write OUT/eval/final/; exit code."""
    if "--compare" in flags:
        print("launch/evaluate.py: --compare takes two summaries: --compare A/summary.json B/summary.json",
              file=sys.stderr)
        return 2
    if recipe.eval.bench is None:
        print("launch/evaluate.py: error: eval.bench is null; give eval.bench=REGISTRY_NAME_OR_PATH", file=sys.stderr)
        return 2
    try:
        if recipe.eval.lmms_eval_tasks and recipe.eval.lmms_eval_data is not None:
            from eval_hooks.lmms_data import environment

            environment(recipe.eval.lmms_eval_data)  # a missing local copy fails now, not after our evaluation
        result = evaluate_checkpoint(recipe, loader)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        print(f"launch/evaluate.py: error: {exc}", file=sys.stderr)
        return 2
    from eval_hooks.distributed import rank_and_world

    if rank_and_world()[0] == 0:
        print(format_tree(result.summary))
        print(f"\nwrote {result.out_dir / 'summary.json'} and predictions.jsonl ({result.seconds:.1f} s)")
        if recipe.eval.lmms_eval_tasks:
            return _run_lmms(recipe)
    return 0


def _run_lmms(recipe: Any) -> int:
    """Offline: run lmms-eval on the checkpoint and wait for it (nothing to stall here)."""
    from eval_hooks.lmms import LmmsEvalLauncher, results_of

    launcher = LmmsEvalLauncher(recipe.eval, recipe.train.output_dir)
    out = launcher.root / "final"
    before = set(results_of(out))
    try:
        proc = launcher.launch(recipe.model.name_or_path, "final")
    except (FileNotFoundError, ValueError) as exc:
        print(f"launch/evaluate.py: error: {exc}", file=sys.stderr)
        return 2
    code = proc.wait() if proc is not None else 1
    if code == 0 and not set(results_of(out)) - before:  # lmms-eval reports its own failures with exit code 0
        print(f"lmms-eval wrote no results (it failed; see {out / 'lmms_eval.log'})", file=sys.stderr)
        return 1
    print(f"lmms-eval exited with {code}; log: {out / 'lmms_eval.log'}")
    return code


def find_summary(path: str | Path) -> Path:
    """A summary.json from a file, an eval folder, or a run directory (its eval/final, else the latest step)."""
    p = Path(path)
    if p.is_file():
        return p
    if (p / layout.SUMMARY_JSON).is_file():
        return p / layout.SUMMARY_JSON
    found = layout.latest_summary(p)
    if found is not None:
        return found
    raise FileNotFoundError(f"no summary.json in {p} (nor in {p}/eval/final or {p}/eval/step_*)")


def compare_main(argv: Sequence[str]) -> int:
    """``launch/evaluate.py --compare A B``: per-node scores and deltas (B - A), x100."""
    paths = [a for a in argv if a != "--compare"]
    if len(paths) != 2:
        print("usage: launch/evaluate.py --compare A/summary.json B/summary.json", file=sys.stderr)
        return 2
    try:
        files = [find_summary(p) for p in paths]
        a, b = (read_json(f) for f in files)
    except (FileNotFoundError, ValueError) as exc:
        print(f"launch/evaluate.py: error: {exc}", file=sys.stderr)
        return 2
    print(format_compare(a, b, str(files[0]), str(files[1]), paired=paired_from_files(files[0], files[1], a, b)))
    return 0


def paired_from_files(path_a: Path, path_b: Path, a: dict, b: dict) -> dict:
    """Paired-bootstrap deltas from the predictions.jsonl next to two summaries (in B's mode and weighting);
    {} when either file is missing or the two share no record."""
    from eval_hooks.intervals import paired_deltas

    preds = [Path(p).parent / "predictions.jsonl" for p in (path_a, path_b)]
    if not all(p.is_file() for p in preds):
        return {}
    ra, rb = (read_jsonl(p) for p in preds)
    missing = set((b.get("judge") or {}).get("skipped_records") or {}) | set(
        (a.get("judge") or {}).get("skipped_records") or {})
    return paired_deltas(ra, rb, b.get("mode") or "renormalize", b.get("weights") or "lmms_eval", missing=missing)


def read_jsonl(path: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
