#!/usr/bin/env python
"""``python launch/data_report.py recipe=NAME [key=value ...] [--report] [--json] [--plan] [--tokenizer=auto|none|PATH] [--explain KEY]``

Prints what a recipe's mix draws: per source rows available, samples drawn and tokens; per group
samples, tokens and realized share (in the mix's unit); per level counts. ``--plan`` reports the
plan without drawing (fast on huge data; tokens are estimates); without it every row the mix can draw is
checked first and its bad rows are named by file, row and reason (data_mix/rowcheck.py). Exit codes: 0 ok, 1 bad data
(with ``data.on_bad_sample=error``, or too many skipped), 2 a recipe / registry / plan error.

The command lives in launch/ because it reads a recipe (``train.recipe``) and loads the model's processor
(``train.model_loading``; a tiny model is built on first use): the data_mix library itself never imports train.
Token counts with the processor are exact (what training encodes); without one they are estimates.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/data_report.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

PROG = "launch/data_report.py"

USAGE = __doc__


def _tokenizer(choice: str, model_name: str):
    """(processor / tokenizer or None, note) for --tokenizer=auto|none|PATH. ``auto``: the recipe model's own
    processor (exact counts, train.model_loading; tiny models are built on first use), when it is available
    locally; PATH: that checkpoint's processor (or its bare tokenizer when it has no processor)."""
    if choice == "none":
        return None, "estimate (--tokenizer=none)"
    from train.config import ModelConfig
    from train.model_loading import load_processor

    if choice == "auto":
        try:
            return load_processor(ModelConfig(name_or_path=model_name)), f"processor of {model_name} (exact)"
        except Exception:  # not available offline: say so and estimate
            return None, f"estimate (the processor of {model_name} is not available locally)"
    try:
        return load_processor(ModelConfig(name_or_path=choice)), f"processor {choice} (exact)"
    except Exception:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(choice), f"tokenizer {choice} (vision tokens estimated)"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from train.cli import explain_if_asked

    explained = explain_if_asked(PROG, argv)  # --explain KEY: one recipe key
    if explained is not None:
        return explained
    from data_mix.badsample import BadSample, TooManyBadSamples
    from data_mix.plan import PlanError
    from data_mix.registry import RegistryError
    from data_mix.rowfiles import DataFileError
    from train.recipe import RecipeError, load_recipe, matched_mix, parse_overrides

    flags = [a for a in argv if a.startswith("--")]
    rest = [a for a in argv if not a.startswith("--")]
    known = ("--report", "--json", "--plan", "--tokenizer", "--no-progress")
    for f in flags:
        if f.split("=", 1)[0] not in known:
            print(f"{PROG}: error: unknown option {f!r}; known: {', '.join(known)}", file=sys.stderr)
            return 2
    tok_choice = next((f.split("=", 1)[1] for f in flags if f.startswith("--tokenizer=")), "auto")
    try:
        name, overrides = parse_overrides(rest)
        if name is None:
            raise RecipeError("name a recipe: recipe=NAME")
        recipe = load_recipe(name, overrides)
        match = matched_mix(recipe)
    except RecipeError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    from data_mix.mixer import build_mix
    from data_mix.report import format_report, planned_report, realized_report
    from data_mix.rowcheck import summary_line
    from train.preflight import BadRecords, check_records

    try:  # bench-format records (GRPO prompts, eval.bench): an unknown metric or an unusable answer is a bad row
        check_records(recipe, PROG)
    except BadRecords as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except (RegistryError, FileNotFoundError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2

    tokenizer, note = _tokenizer(tok_choice, recipe.model.name_or_path)
    print(f"{PROG}: token counter: {note}", file=sys.stderr)
    try:
        # every row the mix can draw checked first (file, row, reason of each bad one; tokens counted once)
        mix = build_mix(recipe.data, recipe.mix, tokenizer=tokenizer, match_mix=match, check_rows="--plan" not in flags,
                        progress="--no-progress" not in flags)
        if mix.row_check is not None:
            print(f"{PROG}: {summary_line(mix.row_check, len(mix.plan.sources))}", file=sys.stderr)
        if "--plan" in flags:
            report = planned_report(mix)
        else:
            report = realized_report(mix, progress="--no-progress" not in flags)
    except DataFileError as exc:  # a data file that cannot be read at all
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except (RegistryError, PlanError, FileNotFoundError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except (BadSample, TooManyBadSamples) as exc:  # one line naming file, row and reason (and the skip policy)
        from train.user_errors import report_user_error

        return report_user_error(PROG, exc)
    for warning in report.get("warnings", []):
        print(f"{PROG}: warning: {warning}", file=sys.stderr)
    if mix.skips.skipped:
        print(f"{PROG}: skipped {mix.skips.skipped} bad sample(s): {mix.skips.summary()}", file=sys.stderr)
    if "--json" in flags:
        print(json.dumps(report, indent=2))
    else:
        print(format_report(report, mix))
    return 0


if __name__ == "__main__":
    sys.exit(main())
