"""What a training launcher does with an output_dir that already holds a run, so that no rerun loses work.

``train.resume``:

- ``auto`` (the default): the output_dir's last run had the same recipe -> resume from its newest COMPLETE
  checkpoint (said in one line). Same recipe but no complete checkpoint (killed before its first save, or a run
  that saved only its final model) -> the old run is moved aside and the run starts over. A different recipe ->
  refuse (exit 2) naming the keys that differ and the three ways on.
- ``never``: an existing run is moved aside to ``<output_dir>.prev-<timestamp>`` (never deleted), then start over.
- a checkpoint path: resume from it, whatever the recipe (the differences are listed in a warning).

The recipe of the previous run is the ``recipe.yaml`` every run writes into its output_dir (train/run_info.py).
Keys that do not change what is trained (:data:`RUN_LOCAL_KEYS`) are not compared.

:func:`plan` decides, without touching the disk (every rank computes it; cheap, called again before the model
loads); :func:`open_run_dir` carries the decision out on rank 0 (move aside; on resume, cut metrics.jsonl back to
the checkpoint's step so that each step has one series) and writes the run's recipe.yaml / run_info.json.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from train import checkpoint as ckpt
from train.recipe import RecipeError, to_yaml

if TYPE_CHECKING:
    from train.config import Recipe

log = logging.getLogger("train.rerun")

RECIPE_SNAPSHOT = "recipe.yaml"
RUN_LOCAL_KEYS = ("name", "description", "bases", "train.resume", "train.num_threads", "train.collective_timeout_s",
                  "train.report_to", "train.logging_steps", "data.num_workers", "grpo.log_completions")
"""Keys that may change between a run and its resumption: they do not change the weights (project choice)."""
RUN_FILES = (RECIPE_SNAPSHOT, "run_info.json", "metrics.jsonl", "train_summary.json", "model.safetensors",
             "adapter", "eval", ckpt.STAGING)
"""Files that mark a directory as holding a run (besides checkpoint-N/)."""


class RerunError(RecipeError):
    """The output_dir holds a run this command may not continue; exit 2 with the ways on."""


@dataclass
class RerunPlan:
    """What to do with ``run_dir`` before training."""

    run_dir: Path
    resume_from: Path | None = None
    move_aside: bool = False
    """Rank 0 renames the existing run to :attr:`aside` before writing anything."""
    aside: Path | None = None
    message: str = ""
    """The one line said at start ("" for a fresh directory)."""
    refused: RerunError | None = None
    """Set when this run may not use run_dir: :func:`open_run_dir` raises it (a --dry-run never gets there)."""


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"train.max_steps": 8, ...} of a nested mapping; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _local(key: str) -> bool:
    return any(key == k or key.startswith(k + ".") for k in RUN_LOCAL_KEYS)


def _comparable(flat: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in flat.items() if not _local(k)}
    match = out.get("mix.budget.match_overrides")  # filled from the command line: drop run-local overrides from it
    if isinstance(match, list):
        out["mix.budget.match_overrides"] = [o for o in match if not _local(str(o).split("=", 1)[0].strip())]
    return out


def recipe_differences(old: dict, new: dict) -> list[str]:
    """``key: old -> new`` for every compared key whose value differs (sorted by key)."""
    a, b = _comparable(flatten(old)), _comparable(flatten(new))
    diffs = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<unset>") != b.get(key, "<unset>"):
            diffs.append(f"{key}: {a.get(key, '<unset>')!r} -> {b.get(key, '<unset>')!r}")
    return diffs


def has_run(run_dir: Path) -> bool:
    """True when ``run_dir`` holds anything a run writes (so starting over there would overwrite it)."""
    if not run_dir.is_dir():
        return False
    if any((run_dir / name).exists() for name in RUN_FILES):
        return True
    return any(ckpt.checkpoint_step(p) is not None for p in run_dir.iterdir())


def aside_path(run_dir: Path) -> Path:
    """``<run_dir>.prev-<UTC timestamp>`` (with a counter if that exists already)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    path = run_dir.with_name(f"{run_dir.name}.prev-{stamp}")
    n = 1
    while path.exists():
        n += 1
        path = run_dir.with_name(f"{run_dir.name}.prev-{stamp}-{n}")
    return path


def _previous_recipe(run_dir: Path) -> dict | None:
    path = run_dir / RECIPE_SNAPSHOT
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


def plan(recipe: Recipe) -> RerunPlan:
    """Decide what this run does with its output_dir (nothing is changed on disk); RerunError to refuse."""
    run_dir = Path(recipe.train.output_dir)
    resume = recipe.train.resume
    out = RerunPlan(run_dir=run_dir)
    if resume not in ("auto", "never"):  # an explicit checkpoint
        out.resume_from = ckpt.resolve_resume(resume, run_dir)
        old = _previous_recipe(out.resume_from.parent)
        diffs = recipe_differences(old, yaml.safe_load(to_yaml(recipe))) if old else []
        out.message = f"resuming from {out.resume_from} (train.resume)" + (
            f"; the recipe differs from that run's in {len(diffs)} key(s): {'; '.join(diffs[:8])}" if diffs else "")
        return out
    if not has_run(run_dir):
        return out
    if resume == "never":
        out.move_aside, out.aside = True, aside_path(run_dir)
        out.message = (f"train.resume=never: moving the previous run in {run_dir} aside to {out.aside} "
                       "(nothing is deleted), starting over")
        return out
    old = _previous_recipe(run_dir)
    latest = ckpt.latest_complete(run_dir)
    if old is None:
        if latest is None:
            out.move_aside, out.aside = True, aside_path(run_dir)
            out.message = (f"{run_dir} holds files of a run without a recipe.yaml or a complete checkpoint: moving "
                           f"them aside to {out.aside}, starting over")
        else:
            out.resume_from = latest
            out.message = (f"resuming from {latest} (train.resume=auto; {run_dir} has no recipe.yaml to compare "
                           "the recipe with)")
        return out
    diffs = recipe_differences(old, yaml.safe_load(to_yaml(recipe)))
    if diffs:
        shown = "; ".join(diffs[:8]) + (f"; ... ({len(diffs) - 8} more)" if len(diffs) > 8 else "")
        where = f"its newest checkpoint is {latest.name}" if latest else "it has no complete checkpoint"
        raise RerunError(
            f"train.output_dir={run_dir} holds a run of a different recipe ({where}); differing keys: {shown}. "
            f"Choose: rerun with that run's recipe to resume it ({run_dir / RECIPE_SNAPSHOT}), give a new "
            f"train.output_dir, train.resume={latest or 'PATH/checkpoint-N'} to continue from it with this recipe, "
            "or train.resume=never to move the old run aside (it is kept as <output_dir>.prev-<time>) and start over")
    if latest is None:
        out.move_aside, out.aside = True, aside_path(run_dir)
        out.message = (f"{run_dir} holds a run of this recipe without a complete checkpoint: moving it aside to "
                       f"{out.aside} (nothing is deleted), starting over")
        return out
    out.resume_from = latest
    out.message = (f"resuming from {latest} (train.resume=auto: {run_dir} holds a run of the same recipe; "
                   "train.resume=never starts over and keeps the old run aside)")
    return out


def truncate_metrics(path: Path, step: int) -> int:
    """Drop the rows of ``path`` (metrics.jsonl) logged after ``step`` (the resumed run logs them again);
    rewritten atomically. Returns the rows dropped."""
    if not path.is_file():
        return 0
    keep, dropped = [], 0
    for line in path.read_text().splitlines():
        try:
            row_step = json.loads(line).get("step")
        except (json.JSONDecodeError, AttributeError):
            row_step = None  # a torn last line of a killed run: dropped
        if isinstance(row_step, int) and row_step <= step:
            keep.append(line)
        else:
            dropped += 1
    if dropped:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in keep))
        os.replace(tmp, path)
    return dropped


def open_run_dir(recipe: Recipe, run_plan: RerunPlan, rank: int, launcher: str,
                 decontamination: dict | None = None) -> None:
    """Carry out ``run_plan`` (rank 0 only: move aside, cut metrics.jsonl back) and write recipe.yaml and
    run_info.json (with ``decontamination``, the pre-run check's record). The plan's line is printed once per node
    (local rank 0), so every node's log says it."""
    from eval_hooks.layout import METRICS_JSONL
    from train.run_info import write_run_info

    if run_plan.refused is not None:
        raise run_plan.refused
    if run_plan.message and int(os.environ.get("LOCAL_RANK", "0")) == 0:
        print(run_plan.message, flush=True)  # once per node: each node's log says where its ranks resumed from
    if rank != 0:
        return
    if run_plan.move_aside and run_plan.aside is not None and has_run(run_plan.run_dir):
        run_plan.run_dir.rename(run_plan.aside)
    if run_plan.resume_from is not None:
        step = ckpt.checkpoint_step(run_plan.resume_from)
        if step is not None and run_plan.resume_from.parent.resolve() == run_plan.run_dir.resolve():
            truncate_metrics(run_plan.run_dir / METRICS_JSONL, step)
    write_run_info(recipe, run_plan.run_dir, launcher, decontamination=decontamination)
