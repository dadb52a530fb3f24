"""Checks every launcher runs after the recipe loads and before any model does: what a recipe or its data can get
wrong is found in seconds, named in one line, not minutes later as a traceback.

- the numeric ranges of the keys (the key table, train/keys.py, and train/key_ranges.py) are checked earlier, when the recipe loads (exit 2).
- :func:`check_paths`: ``data.root`` (when sources are read through it), ``train.output_dir`` a writable directory
  (or creatable), a given DeepSpeed JSON file.
- :func:`check_records`: every record of ``eval.bench`` (and of GRPO's bench-format prompt sources) read without
  opening media and checked: its leaf in the taxonomy, its metric known, its answer usable by that metric
  (rewards/answers.py). A bad record is named ``file, row N: reason``; under ``data.on_bad_sample=error`` the first
  one stops the launcher (exit 1), under ``skip`` they are counted in one line and left out (GRPO's prompt check,
  eval_hooks/subset.py), never scored 0.
- the rerun decision of a training launcher (train/rerun.py): a different recipe in output_dir stops here (exit 2).
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from train.recipe import RecipeError

if TYPE_CHECKING:
    from train.config import Recipe

TRAINING_LAUNCHERS = ("launch/sft.py", "launch/grpo.py")


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output_dir(output_dir: str, key: str = "train.output_dir") -> None:
    """``output_dir`` is a directory this process can write into, or can be created (nothing is left behind)."""
    path = Path(output_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise RecipeError(f"{key}={output_dir!r} is a file, not a directory: give a directory for the run")
    base = _nearest_existing(path.absolute())
    if not base.is_dir():
        raise RecipeError(f"{key}={output_dir!r} cannot be created: {base} is a file, not a directory")
    try:
        with tempfile.NamedTemporaryFile(dir=base, prefix=".write-probe-"):
            pass
    except OSError as exc:
        raise RecipeError(f"{key}={output_dir!r} is not writable ({base}: {exc.strerror or exc})") from None


def check_paths(recipe: Recipe) -> None:
    """data.root (when the mix reads sources through it), output_dir, a local model path, the DeepSpeed config."""
    root = Path(recipe.data.root).expanduser()
    if recipe.mix.groups and not root.is_dir():
        hint = "a file, not a directory" if root.exists() else "does not exist"
        raise RecipeError(f"data.root={recipe.data.root!r} {hint}: point it at the data folder (stand-in data: "
                          "python -m data_mix.engine --standin DIR, then data.root=DIR)")
    check_output_dir(recipe.train.output_dir)
    name = recipe.model.name_or_path
    looks_local = name.startswith(("/", ".", "~")) or name.count("/") > 1  # a hub id is "org/name"
    if looks_local and not Path(name).expanduser().exists():
        raise RecipeError(f"model.name_or_path={name!r} does not exist (a local path; a hub id is org/name)")
    ds = recipe.train.deepspeed
    if ds not in (None, "zero2", "zero3") and not Path(ds).is_file():
        raise RecipeError(f"train.deepspeed={ds!r}: not zero2, zero3, or an existing JSON file")


def record_problems(source: Any, data: Any, limit: int | None = None) -> tuple[int, list[Any]]:
    """(records read, BadSample of every bad record) of a bench-format ``source`` (a registry name or a SourceSpec):
    unreadable rows, an unknown leaf, an unknown metric, an answer the metric cannot use. Media are not opened.
    ``limit`` stops after that many bad records."""
    from data_mix.badsample import BadSample
    from data_mix.readers import SourceRows, resolve_spec
    from rewards.answers import answer_problem

    spec = resolve_spec(source, data)
    seen, bad = 0, []
    for item in SourceRows(spec, data):
        seen += 1
        if not isinstance(item, BadSample):
            problem = answer_problem(item.metricfunc, item.answer, item.metric_extra)
            item = BadSample(item.file or spec.name, item.row, "bad_record", problem) if problem else None
        if item is not None:
            bad.append(item)
            if limit is not None and len(bad) >= limit:
                break
    return seen, bad


def scored_sources(recipe: Recipe, prog: str) -> list[tuple[str, Any]]:
    """(what, source) of every bench-format source this launcher scores: ``eval.bench`` (not for the data report, which
    is about the mix), and for GRPO and the data report the mix's bench-format sources (GRPO prompts, whose answers
    the accuracy reward reads)."""
    from data_mix.registry import load_registry
    from eval_hooks.subset import bench_source

    out: list[tuple[str, Any]] = []
    if recipe.eval.bench and prog != "launch/data_report.py":  # the data report is about the mix
        out.append((f"eval.bench={recipe.eval.bench}", bench_source(recipe.eval.bench, recipe.data)))
    if prog in ("launch/grpo.py", "launch/data_report.py") and recipe.mix.groups:
        registry = load_registry(recipe.data.registry)
        names = dict.fromkeys(n for g in recipe.mix.groups.values() for n in g.sources)
        out += [(f"source {n}", n) for n in names if n in registry and registry.get(n).format == "bench"]
    return out


class BadRecords(ValueError):
    """Records that cannot be scored (exit 1, naming the first by file and row)."""


def check_records(recipe: Recipe, prog: str, out=sys.stderr) -> int:
    """Every record of :func:`scored_sources` checked. Under ``data.on_bad_sample=error`` a bad one stops the
    launcher (BadRecords naming the first and the count); under ``skip`` one line per source counts them and the
    run leaves them out (GRPO's prompt check, the evaluation subset). Returns the bad records found."""
    total = 0
    for what, source in scored_sources(recipe, prog):
        seen, bad = record_problems(source, recipe.data)
        if not bad:
            continue
        total += len(bad)
        if recipe.data.on_bad_sample == "error":
            raise BadRecords(f"{what}: {len(bad)} of {seen} records cannot be scored; first: {bad[0]} (fix them, or "
                             "data.on_bad_sample=skip leaves them out, counted)")
        if os.environ.get("RANK", "0") != "0":  # said once, by rank 0
            continue
        print(f"{prog}: {what}: {len(bad)} of {seen} records cannot be scored and are left out "
              f"(data.on_bad_sample=skip): " + "; ".join(str(b) for b in bad[:5]) + (" ..." if len(bad) > 5 else ""),
              file=out, flush=True)
    return total


def run_checks(prog: str, recipe: Recipe, flags: Sequence[str] = ()) -> None:
    """Everything above, in order, for launcher ``prog``. RecipeError -> exit 2, BadRecords -> exit 1."""
    check_paths(recipe)  # the ranges were checked when the recipe loaded (the key table and train.key_ranges via train.recipe)
    if prog in TRAINING_LAUNCHERS and "--dry-run" not in flags and "--print-config" not in flags:
        from train.rerun import plan

        plan(recipe)
    try:
        check_records(recipe, prog)
    except FileNotFoundError as exc:
        raise RecipeError(str(exc)) from None
