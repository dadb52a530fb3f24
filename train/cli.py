"""The shared command line of every launcher: ``recipe=NAME key=value ... [--print-config]``.

Errors in the recipe exit with code 2 before anything heavy is imported.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from train.recipe import RecipeError, check_sources, load_recipe, parse_overrides, to_yaml

if TYPE_CHECKING:
    from train.config import Recipe

USAGE = """usage: {prog} recipe=NAME [key=value ...] [--print-config]{extra}

  recipe=NAME      a recipe under recipes/ (or a path to a YAML file)
  key=value        override any recipe key, e.g. optim.lr=1e-5 train.max_steps=10
  --print-config   print the fully resolved recipe as YAML and exit
"""


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
    try:
        flags, rest = split_flags(argv, ["--print-config", *extra_flags])
        name, overrides = parse_overrides(rest)
        recipe = load_recipe(name, overrides)
        check_sources(recipe)
    except RecipeError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    if "--print-config" in flags:
        sys.stdout.write(to_yaml(recipe))
        return 0
    try:
        check_family(recipe)
        check_judge(recipe)
    except RecipeError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    code = int(run(recipe, flags) or 0)
    close_process_group(code)
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


def report_user_error(prog: str, exc: BaseException) -> int:
    """One line on stderr for an error the user can fix (no traceback), with the hint to skip a bad sample
    instead; returns the exit code 1. The leading newline ends an open progress-bar line."""
    from data_mix.badsample import BadSample

    message = str(exc)
    if isinstance(exc, BadSample) and "on_bad_sample" not in message:
        message += " (data.on_bad_sample=skip counts and skips bad samples instead)"
    print(f"\n{prog}: error: {message}", file=sys.stderr, flush=True)
    return 1


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
