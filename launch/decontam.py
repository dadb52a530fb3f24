#!/usr/bin/env python
"""Decontamination: python launch/decontam.py recipe=NAME [key=value ...] [--json] [--no-progress] [--explain KEY]

Checks every row of every source of the recipe's mix against ``data.decontaminate_against`` (default:
``eval.bench``): a row that shows a bench record's images (near duplicates: re-encoded or resized) and contains
its question (reworded: most of its content words) is contaminated (data_mix/near_dup.py). Prints the summary and the contaminated rows (training file + row = bench file + row).
Exit codes: 0 clean, 1 contaminated rows found, 2 a recipe / registry error or an evaluation set (or a row of
it) that cannot be read. SFT and GRPO runs make the same check before the model loads (``data.decontaminate``).
"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from launch._env import use_project_venv  # noqa: E402

use_project_venv("launch/decontam.py")  # re-exec under .venv (or one line on how to make it) before anything heavy

PROG = "launch/decontam.py"


def main(argv: list[str]) -> int:
    if not argv or any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from train.cli import explain_if_asked

    explained = explain_if_asked(PROG, argv)  # --explain KEY: one recipe key
    if explained is not None:
        return explained
    from data_mix.decontam import EvalSetError, scan
    from data_mix.registry import RegistryError
    from train.cli import split_flags
    from train.recipe import RecipeError, load_recipe, parse_overrides

    try:
        flags, rest = split_flags(argv, ["--json", "--no-progress"])
        name, overrides = parse_overrides(rest)
        if name is None:
            raise RecipeError("name a recipe: recipe=NAME")
        recipe = load_recipe(name, overrides)
        sources = [s for g in recipe.mix.groups.values() for s in g.sources]
        benches = list(recipe.data.decontaminate_against or [])
        if not sources or not benches:
            raise RecipeError("nothing to check: " + ("the recipe's mix has no sources" if not sources else
                              "no evaluation set (data.decontaminate_against=[...] or eval.bench=...)"))
        report = scan(sources, benches, recipe.data, progress="--no-progress" not in flags)
        if report.bench_skipped:
            raise EvalSetError(f"{report.bench_skipped} row(s) of the evaluation set cannot be read, so nothing "
                               f"was checked against them; first: {report.first_bench_skipped}")
    except (RecipeError, RegistryError, FileNotFoundError, EvalSetError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    if "--json" in flags:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(report.summary())
        for hit in report.hits:
            print(f"  {hit.train} ({hit.train_source}) = {hit.bench} ({hit.bench_source}): {hit.question}")
        if report.n_hits > len(report.hits):
            print(f"  ... and {report.n_hits - len(report.hits)} more")
    return 1 if report.n_hits else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
