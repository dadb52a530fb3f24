"""The run page at the end of a run (SFT, GRPO, evaluation) and for ``launch/report.py RUN_DIR``.

This module adds what only train/ can know to eval_hooks/html's page: which recipe keys of the run differ
from its bases (the run's resolved recipe.yaml against the recipe its command line named, loaded without the
command-line overrides, or against the schema defaults when it named none).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def _flat(node: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for k, v in node.items():
            out.update(_flat(v, f"{prefix}{k}."))
        return out
    return {prefix[:-1]: node}


def recipe_diff(run_dir: str | Path) -> tuple[list[tuple[str, Any, Any]] | None, str | None]:
    """([(key, base value, this run's value)], what the base is); (None, None) without recipe.yaml."""
    import json

    import yaml

    from train.recipe import RecipeError, load_recipe, parse_overrides, to_yaml

    run_dir = Path(run_dir)
    if not (run_dir / "recipe.yaml").is_file():
        return None, None
    mine = _flat(yaml.safe_load((run_dir / "recipe.yaml").read_text()) or {})
    name = None
    info = run_dir / "run_info.json"
    if info.is_file():
        argv = json.loads(info.read_text()).get("argv") or []
        try:
            name, _ = parse_overrides([a for a in argv[1:] if "=" in a])
        except RecipeError:
            name = None
    try:
        base = _flat(yaml.safe_load(to_yaml(load_recipe(name))) or {})
    except (RecipeError, FileNotFoundError) as exc:  # the recipe was renamed or removed since the run
        log.warning("run page: recipe %r not loadable now (%s); diff against the schema defaults", name, exc)
        name, base = None, _flat(yaml.safe_load(to_yaml(load_recipe(None))) or {})
    keys = [k for k in mine if k != "name" and mine.get(k) != base.get(k)]
    return [(k, base.get(k), mine[k]) for k in keys], (f"recipe {name}" if name else "the schema defaults")


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """RUN_DIR/report.html (or ``out``); raises what reading or writing raises."""
    from eval_hooks.html import write_run_page

    diff, bases = recipe_diff(run_dir)
    return write_run_page(run_dir, out, recipe_diff=diff, recipe_bases=bases)


def write_report_at_end(run_dir: str | Path) -> Path | None:
    """:func:`write_report` at the end of a run: a page that cannot be written is a warning, never a failed run."""
    try:
        path = write_report(run_dir)
    except Exception as exc:  # noqa: BLE001 - the run's results are written; the page is a view of them
        log.warning("run page not written for %s: %s: %s (python launch/report.py %s retries)", run_dir,
                    type(exc).__name__, exc, run_dir)
        return None
    print(f"run page: {path}", flush=True)
    return path
