"""The shared command line of every launcher: ``recipe=NAME key=value ... [--print-config]``.

Errors in the recipe exit with code 2 before anything heavy is imported.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from train.recipe import RecipeError, check_sources, load_recipe, parse_overrides, to_yaml
from train.user_errors import report_user_error  # noqa: F401 (re-exported: the launchers' one-line errors)

if TYPE_CHECKING:
    from train.config import Recipe

USAGE = """usage: {prog} recipe=NAME [key=value ...] [--print-config]{extra}
       {prog} --explain KEY

  recipe=NAME      a recipe under recipes/ (or a path to a YAML file)
  key=value        override any recipe key, e.g. optim.lr=1e-5 train.max_steps=10
  --print-config   print the fully resolved recipe as YAML (each value's origin as comments) and exit
  --explain KEY    a key's doc, default, allowed values, provenance and GRPO backends (docs/KEYS.md lists all)
"""


def explain_if_asked(prog: str, argv: Sequence[str]) -> int | None:
    """``--explain KEY`` anywhere in ``argv``: print the key's explanation and return the exit code; else None."""
    from train.keydoc import explain_arg, explain_main

    key = explain_arg(argv)
    if key is None:
        return None
    if not key:
        print(f"{prog}: error: --explain needs a KEY, e.g. --explain optim.lr", file=sys.stderr)
        return 2
    return explain_main(prog, key)


def split_flags(argv: Sequence[str], known: Sequence[str]) -> tuple[list[str], list[str]]:
    """Separate ``--flags`` (checked against ``known``) from ``key=value`` arguments."""
    flags, rest = [], []
    for arg in argv:
        if arg.startswith("--"):
            name = arg.split("=", 1)[0]
            if name not in known:
                raise RecipeError(f"unknown option {name!r}; known: {', '.join(known)}")
            flags.append(arg)
        else:
            rest.append(arg)
    return flags, rest


def main(prog: str, argv: Sequence[str], run: Callable[..., int | None],
         extra_flags: Sequence[str] = (), extra_usage: str = "") -> int:
    """Parse, check, then call ``run(recipe, flags)``; return the process exit code."""
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE.format(prog=prog, extra=extra_usage))
        return 0
    explained = explain_if_asked(prog, argv)
    if explained is not None:
        return explained
    try:
        flags, rest = split_flags(argv, ["--print-config", *extra_flags])
        name, overrides = parse_overrides(rest)
        recipe = load_recipe(name, overrides)
        check_sources(recipe)
    except RecipeError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if "--print-config" in flags:
        from train.config_origin import origin_comments

        sys.stdout.write(to_yaml(recipe) + origin_comments(recipe, name, overrides))
        return 0
    from train.preflight import BadRecords, run_checks

    try:
        check_family(recipe)
        check_judge(recipe)
        run_checks(prog, recipe, flags)  # ranges, paths, the rerun decision, bench records: before any model loads
    except RecipeError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    except BadRecords as exc:
        return report_user_error(prog, exc)
    code = int(run_guarded(prog, run, recipe, flags) or 0)
    end_process(code)
    return code


def check_family(recipe: Recipe) -> None:
    """The model's family from its config.json (no weights load): an unsupported ``model_type``, or a recipe key
    the family cannot honour (e.g. ``train.packing`` where packing is refused), stops here (exit 2). A checkpoint
    whose config.json cannot be read yet (a hub id not downloaded) is left to the loader."""
    from train.models import UnsupportedFamily, config_json, family_for_checkpoint

    if config_json(recipe.model.name_or_path) is None:
        return
    try:
        family = family_for_checkpoint(recipe.model.name_or_path)
        family.check_recipe(recipe)
    except (UnsupportedFamily, ValueError) as exc:
        raise RecipeError(str(exc)) from None


def run_guarded(prog: str, run: Callable[..., int | None], recipe: Recipe, flags: list[str]) -> int | None:
    """``run(recipe, flags)``; an error the user can fix (train.run.user_errors, a RecipeError raised late) is one
    line and exit 1 (2 for a recipe), Ctrl-C is one line and exit 130: never a traceback for those."""
    from train.run import user_errors

    try:
        return run(recipe, flags)
    except RecipeError as exc:
        print(f"\n{prog}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print(f"\n{prog}: error: interrupted (Ctrl-C); complete checkpoints are kept, the same command resumes",
              file=sys.stderr, flush=True)
        return 130
    except user_errors() as exc:
        return report_user_error(prog, exc)


def check_judge(recipe: Recipe) -> None:
    """An evaluation whose records need an LLM judge that is not configured stops here, at start (``eval.judge``)."""
    if recipe.eval.bench is None:
        return
    from eval_hooks.evaluator import check_judge_at_start
    from eval_hooks.judging import JudgeRequired

    try:
        check_judge_at_start(recipe.eval, recipe.data, recipe.reward.judge)
    except JudgeRequired as exc:
        raise RecipeError(str(exc)) from None


def close_process_group(code: int) -> None:
    """Leave torch.distributed cleanly: after a successful run every rank waits for the others (rank 0 may
    still be writing the summary), then the group is destroyed before the interpreter exits (left to exit-time
    destructors, gloo's threads can abort a finished rank: "terminate called without an active exception")."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    if code == 0:
        dist.barrier()
    dist.destroy_process_group()


def end_process(code: int) -> None:
    """The end of a launcher's process. Outside torch.distributed, or in a one-process group (closed): nothing more,
    the caller returns ``code``. In a torchrun worker of several: close the group, run the interpreter's exit
    handlers (logging, wandb, ...), flush, and leave with ``os._exit(code)``. Destroying the group is not enough:
    a finished rank still aborted now and then in C++ exit-time destructors ("terminate called without an active
    exception", SIGABRT; seen on rank 1 of a 2-node Slurm run and of a 2-rank ZeRO-3 run), and torchrun, Slurm
    and a sweep then report a completed run as failed."""
    import atexit
    import os

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    several = dist.get_world_size() > 1
    close_process_group(code)
    if not several:  # e.g. DeepSpeed's one-process group inside a test's own interpreter: keep it alive
        return
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
