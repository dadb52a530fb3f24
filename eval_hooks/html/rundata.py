"""Everything a run page shows, read from a run directory that may still be running or was killed.

Every reader tolerates what a live or killed run leaves behind: a metrics.jsonl whose last line is cut
mid-write, an evaluation folder without its summary.json yet, no train_summary.json. What could not be read
is kept as a note that the page prints (never a silent drop, never a traceback).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval_hooks import layout

ROLLOUTS_JSONL = "rollouts.jsonl"
"""GRPO's sampled rollout log (train/grpo/rollouts.py writes it)."""
PREDICTIONS_JSONL = "predictions.jsonl"


@dataclass
class RunData:
    """One run directory, read once."""

    run_dir: Path
    metrics: list[dict[str, Any]] = field(default_factory=list)
    """metrics.jsonl rows in file order (rows that are not JSON objects left out, each with a note)."""
    evaluations: list[tuple[str | int, dict[str, Any]]] = field(default_factory=list)
    """(step, summary.json) of every finished evaluation, steps in order then ``final``."""
    records: list[dict[str, Any]] = field(default_factory=list)
    """predictions.jsonl of the last evaluation."""
    records_from: Path | None = None
    rollouts: list[dict[str, Any]] = field(default_factory=list)
    recipe_text: str | None = None
    run_info: dict[str, Any] | None = None
    train_summary: dict[str, Any] | None = None
    mix_plan: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    """What could not be read, one line each (the page prints them)."""

    @property
    def last_summary(self) -> dict[str, Any] | None:
        return self.evaluations[-1][1] if self.evaluations else None

    @property
    def launcher(self) -> str:
        """``sft``, ``grpo``, ``evaluate`` (a run without run_info.json that has eval/final) or ``unknown``."""
        if self.run_info and self.run_info.get("launcher"):
            return str(self.run_info["launcher"])
        return "evaluate" if any(step == layout.FINAL for step, _ in self.evaluations) else "unknown"


def read_jsonl(path: Path, notes: list[str], limit: int | None = None) -> list[dict[str, Any]]:
    """JSON-object lines of ``path``; a line that is not one (a cut last line of a live run) is left out with a
    note naming file:line. ``limit``: keep the first ``limit`` rows and note how many more there were."""
    rows: list[dict[str, Any]] = []
    bad, more = [], 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            if limit is not None and len(rows) >= limit:
                more += 1
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                bad.append(n)
                continue
            if isinstance(row, dict):
                rows.append(row)
            else:
                bad.append(n)
    if bad:
        notes.append(f"{path}: line(s) {', '.join(map(str, bad[:5]))}{' ...' if len(bad) > 5 else ''} not a JSON "
                     "object (a line cut by a live or killed run?): left out")
    if more:
        notes.append(f"{path}: {more} more rows than the page shows ({limit}): left out")
    return rows


def _read_json(path: Path, notes: list[str]) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        notes.append(f"{path}: not readable ({type(exc).__name__}: {exc}): left out")
        return None


def _step_key(path: Path) -> tuple[int, int]:
    name = path.parent.name
    if name == layout.FINAL:
        return (1, 0)
    m = re.fullmatch(r"step_(\d+)", name)
    return (0, int(m.group(1))) if m else (2, 0)


def read_run(run_dir: str | Path, max_records: int = 20000, max_rollouts: int = 20000) -> RunData:
    """Read ``run_dir``; raise FileNotFoundError when it is not a directory (the only fatal case)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"{run_dir}: no such run directory")
    data = RunData(run_dir=run_dir)
    notes = data.notes
    metrics = run_dir / layout.METRICS_JSONL
    if metrics.is_file():
        data.metrics = read_jsonl(metrics, notes)
    for path in sorted((run_dir / layout.EVAL_DIR).glob(f"*/{layout.SUMMARY_JSON}"), key=_step_key):
        summary = _read_json(path, notes)
        if isinstance(summary, dict) and isinstance(summary.get("tree"), dict):
            step = path.parent.name
            data.evaluations.append((layout.FINAL if step == layout.FINAL else int(step[5:]) if step[5:].isdigit()
                                     else step, summary))
        elif summary is not None:
            notes.append(f"{path}: no 'tree' (not an eval_hooks summary.json): left out")
    if data.evaluations:
        step = data.evaluations[-1][0]
        preds = layout.eval_dir(run_dir, step) / PREDICTIONS_JSONL
        if preds.is_file():
            data.records, data.records_from = read_jsonl(preds, notes, limit=max_records), preds
        else:
            notes.append(f"{preds}: missing, so no evaluation samples")
    rollouts = run_dir / ROLLOUTS_JSONL
    if rollouts.is_file():
        data.rollouts = read_jsonl(rollouts, notes, limit=max_rollouts)
    if (run_dir / "recipe.yaml").is_file():
        data.recipe_text = (run_dir / "recipe.yaml").read_text(encoding="utf-8", errors="replace")
    for attr, name in (("run_info", "run_info.json"), ("train_summary", layout.TRAIN_SUMMARY),
                       ("mix_plan", layout.MIX_PLAN)):
        if (run_dir / name).is_file():
            setattr(data, attr, _read_json(run_dir / name, notes))
    return data


def series(rows: list[dict[str, Any]], key: str) -> list[tuple[float, float]]:
    """(step, value) of ``key`` over metrics rows, the last value per step, steps ascending; non-numbers left out."""
    points: dict[float, float] = {}
    for row in rows:
        value, step = row.get(key), row.get("step")
        if isinstance(value, (int, float)) and not isinstance(value, bool) and isinstance(step, (int, float)) \
                and value == value and abs(value) != float("inf"):
            points[float(step)] = float(value)
    return sorted(points.items())
