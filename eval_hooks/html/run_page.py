"""A run's page: ``RUN_DIR/report.html`` (sections ``run``, ``curves``, ``tree``, ``samples``, ``rollouts``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eval_hooks.html.media import Thumbnails
from eval_hooks.html.page import document, json_block
from eval_hooks.html.records import rollout_rows, rollouts_section, sample_rows, samples_section
from eval_hooks.html.run_sections import curves_section, run_section, tree_section
from eval_hooks.html.rundata import read_run
from eval_hooks.io import atomic_write_text

REPORT_HTML = "report.html"


def render_run_page(run_dir: str | Path, out: str | Path | None = None,
                    recipe_diff: list[tuple[str, Any, Any]] | None = None, recipe_bases: str | None = None) -> str:
    """The page's HTML; thumbnails are written beside ``out`` (default RUN_DIR/report.html)."""
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / REPORT_HTML
    data = read_run(run_dir)
    thumbs = Thumbnails(out.parent)
    samples = sample_rows(data.records, thumbs)
    rollouts = rollout_rows(data.rollouts, thumbs)
    sections = [
        ("run", "Run", run_section(data, recipe_diff, recipe_bases)),
        ("curves", "Curves", curves_section(data)),
        ("tree", "Hierarchy (last evaluation)", tree_section(data)),
        ("samples", "Evaluation samples", samples_section(samples, data.records_from)),
        ("rollouts", "GRPO rollouts", rollouts_section(rollouts, data.launcher)),
    ]
    blocks = (json_block("samples-data", samples) if samples else "") + \
        (json_block("rollouts-data", rollouts) if rollouts else "")
    return document(f"Run {run_dir.name}", sections, blocks, subtitle=str(run_dir.resolve()))


def write_run_page(run_dir: str | Path, out: str | Path | None = None, **kw: Any) -> Path:
    """Write the page (atomically) and its thumbnails; return the page's path."""
    out = Path(out) if out is not None else Path(run_dir) / REPORT_HTML
    return atomic_write_text(out, render_run_page(run_dir, out, **kw))
