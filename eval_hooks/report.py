"""A sweep's results in the paper's table layout, plus figures (``python launch/report.py SWEEP_DIR``).

Rows are runs (in the sweep's order, labelled as in sweep.json), columns Avg then the eleven
abilities in the paper's order. Each cell is the score x100 and, for every row that is not its own
baseline, the delta in points against its comparison row (the sweep's ``baseline`` or the run's
``compare_to``), classed gain / neutral / drop by a threshold. Written as markdown and CSV next to
the figures (eval_hooks/figures.py) under SWEEP_DIR/report/ (eval_hooks/sweep_report.py writes them).

Scores come from each run's last evaluation: ``RUN_DIR/eval/final/summary.json`` (launch/evaluate.py, or a
trainer's ``eval.final_protocol`` evaluation), else the latest ``RUN_DIR/eval/step_N/summary.json`` (the
trainers' end-of-training evaluation). A run counts as finished when it has eval/final or the sweep's DONE
marker; rows of unfinished runs are flagged. Learning curves come from ``RUN_DIR/metrics.jsonl``.

The table says which weighting produced each Avg (``lmms_eval`` or ``paper_table``, from summary.json) and
which evaluation protocol each row used; ``--weights NAME`` re-aggregates every row from its leaf scores
with that weighting. A node missing for want of an LLM judge shows ``missing``, never 0. The note under the
table says which token budget the rows used (equal or not, from each SFT run's ``RUN_DIR/mix_plan.json``).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from data_mix.report import budget_lines
from eval_hooks import layout
from eval_hooks.io import read_json
from eval_hooks.tree import flat_scores, missing_note, protocol_label, weighting_label
from rewards import taxonomy as tx

# The paper's column labels, in its order, with the taxonomy node each one is.
PAPER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("Geom.", "L1/Geometry"), ("Motion", "L1/Motion"), ("Rel.", "L1/Relation"), ("Local.", "L1/Localization"),
    ("Orient.", "L1/Orientation"), ("Underst.", "L2/Underst."), ("Memory", "L2/Memory"),
    ("Caus. Reas.", "L3/Caus. Reas."), ("Seq. Plan.", "L3/Seq. Plan."), ("Goal Exec.", "L4/Goal-Driven Execution"),
    ("Open Expl.", "L4/Open-world Exploration"),
)
AVG = ("Avg", "")
CLASSES = ("gain", "neutral", "drop")
_MARK = {"gain": " ▲", "drop": " ▼", "neutral": ""}
_UNTESTED = {"gain": " △", "drop": " ▽", "neutral": ""}
"""Marks of a delta beyond the threshold whose significance could not be tested (no predictions.jsonl)."""


def columns() -> list[tuple[str, str]]:
    """(label, node key) for Avg and the eleven abilities; checked against taxonomy.abilities()."""
    keys = {a.key for a in tx.abilities()}
    paper = {k for _, k in PAPER_COLUMNS}
    if keys != paper:
        raise RuntimeError(f"the report's ability columns {sorted(paper)} differ from the taxonomy's {sorted(keys)}")
    return [AVG, *PAPER_COLUMNS]


@dataclass
class RunResult:
    """One run's scores (0..1 per column key; None where not scored) and its learning curve."""

    name: str
    label: str
    compare_to: str | None = None
    summary: Path | None = None
    step: str | int | None = None
    """The evaluation step the scores come from ("final" or the last step N)."""
    finished: bool = True
    """The run is over (DONE marker or eval/final): its last evaluation is its final one."""
    scores: dict[str, float | None] = field(default_factory=dict)
    curve: list[tuple[int, float]] = field(default_factory=list)
    """(step, bench/overall) from metrics.jsonl."""
    budget: dict | None = None
    """The run's RUN_DIR/mix_plan.json (SFT runs write it at start): its token budget, for the table's note."""
    paired: dict[str, dict] = field(default_factory=dict)
    """Node key -> paired-bootstrap delta against the comparison row (eval_hooks.intervals.paired_deltas of the
    two runs' predictions.jsonl; empty when a file is missing or they share no record)."""

    @cached_property
    def evaluation(self) -> dict:
        """How the scores were computed, from the summary: weights, protocol, missing node keys, missing note."""
        data = json.loads(self.summary.read_text()) if self.summary is not None else {}
        return {"weights": weighting_label(data), "protocol": protocol_label(data),
                "missing": set(data.get("missing") or ()), "note": missing_note(data)}


@dataclass
class Report:
    rows: list[RunResult]
    """Runs with a summary, in sweep order."""
    missing: list[str]
    """Runs without any summary (not finished, failed, or never run)."""
    threshold: float
    """Points (x100) at or beyond which a delta is a gain or a drop."""

    def row(self, name: str) -> RunResult:
        return next(r for r in self.rows if r.name == name)

    def reference(self, run: RunResult) -> RunResult | None:
        """The row ``run`` is compared with (None for a baseline, or when that row has no summary)."""
        if run.compare_to is None or run.compare_to == run.name:
            return None
        return next((r for r in self.rows if r.name == run.compare_to), None)

    def delta(self, run: RunResult, key: str) -> float | None:
        """Points: 100 x (run score - reference score)."""
        ref = self.reference(run)
        if ref is None or (key == "" and run.evaluation["weights"] != ref.evaluation["weights"]):
            return None  # no reference, or Avg values weighted differently
        a, b = run.scores.get(key), ref.scores.get(key)
        return None if a is None or b is None else 100.0 * (a - b)

    def interval(self, run: RunResult, key: str) -> dict | None:
        """The paired delta of ``run`` at ``key`` (points: ``delta``, ``ci95``, ``significant``), or None."""
        if key == "" and self.reference(run) is not None and \
                run.evaluation["weights"] != self.reference(run).evaluation["weights"]:
            return None
        found = run.paired.get(key)
        if not found:
            return None
        return {"delta": 100.0 * found["delta"], "ci95": [100.0 * v for v in found["ci95"]],
                "significant": found["significant"], "n": found["n"]}

    def klass(self, delta: float | None, run: RunResult | None = None, key: str = "") -> str | None:
        """gain / drop / neutral. With a paired interval: gain or drop only when it excludes 0 (significant);
        without one (no predictions.jsonl): by ``threshold``, an untested class (marked △ / ▽, not ▲ / ▼)."""
        if delta is None:
            return None
        found = self.interval(run, key) if run is not None else None
        if found is not None:
            return ("gain" if delta > 0 else "drop") if found["significant"] else "neutral"
        if delta >= self.threshold:
            return "gain"
        if delta <= -self.threshold:
            return "drop"
        return "neutral"

    def resolvable(self) -> float | None:
        """The smallest Avg delta this benchmark's size resolves: the median half-width (points) of the rows'
        paired Avg intervals; None without intervals."""
        widths = sorted((i["ci95"][1] - i["ci95"][0]) / 2 for r in self.rows if (i := self.interval(r, "")))
        return None if not widths else widths[len(widths) // 2]


summary_path = layout.latest_summary  # eval/final, else the latest eval/step_N (eval_hooks/layout.py)


def read_curve(run_dir: Path, metric: str = "bench/overall") -> list[tuple[int, float]]:
    """(step, value) of ``metric`` in RUN_DIR/metrics.jsonl, last value per step, sorted by step."""
    path = run_dir / layout.METRICS_JSONL
    if not path.is_file():
        return []
    points: dict[int, float] = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            print(f"report: {path}:{n}: not JSON, skipped", file=sys.stderr)
            continue
        if metric in row and "step" in row and isinstance(row[metric], (int, float)):
            points[int(row["step"])] = float(row[metric])
    return sorted(points.items())


def read_scores(summary_path: Path, weighting: str | None = None) -> tuple[dict[str, float | None], str | int | None]:
    """Column key -> score of one summary.json (eval_hooks' layout: ``tree`` with node keys); with ``weighting``
    re-aggregated from the summary's leaf scores with that weighting (in the summary's mode)."""
    data = json.loads(summary_path.read_text())
    if "tree" not in data:
        raise ValueError(f"{summary_path}: no 'tree' (not an eval_hooks summary.json)")
    flat = flat_scores(data["tree"])
    if weighting is not None and weighting != weighting_label(data):
        leaves = [n for n in _nodes(data["tree"]) if not n.get("children")]
        agg = tx.aggregate_nodes({n["key"]: n["score"] for n in leaves if n["count"] > 0 and n["score"] is not None},
                                 {n["key"]: n["count"] for n in leaves}, mode=data.get("mode", "renormalize"),
                                 weighting=weighting, missing=[n["key"] for n in leaves if n.get("missing")])
        flat = agg.scores
    return {key: flat.get(key) for _, key in columns()}, data.get("step")


def _nodes(tree: dict) -> list[dict]:
    return [tree] + [n for child in tree.get("children", ()) for n in _nodes(child)]


def reweight(report: Report, weighting: str) -> None:
    """Every row's scores re-aggregated with ``weighting`` (``launch/report.py --weights``)."""
    for run in report.rows:
        run.scores = read_scores(run.summary, weighting)[0]
        run.evaluation["weights"] = weighting


def read_plan(run_dir: Path) -> dict | None:
    """The run's mix_plan.json (SFT runs write it at start), or None (GRPO and evaluation runs, older runs)."""
    path = run_dir / layout.MIX_PLAN
    return read_json(path) if path.is_file() else None


def collect(sweep_dir: Path, baseline: str | None = None, threshold: float = 1.0) -> Report:
    """Read every run of a sweep directory (its sweep.json; else every folder under runs/)."""
    sweep_dir = Path(sweep_dir)
    state_path = sweep_dir / layout.SWEEP_JSON
    if state_path.is_file():
        state = json.loads(state_path.read_text())
        order = state.get("order") or list(state["runs"])
        infos = {name: state["runs"][name] for name in order if name in state["runs"]}
        sweep_baseline = state.get("baseline")
    elif (sweep_dir / layout.RUNS_DIR).is_dir():
        infos = {p.name: {"dir": str(p)} for p in sorted((sweep_dir / layout.RUNS_DIR).iterdir()) if p.is_dir()}
        sweep_baseline = None
    else:
        raise FileNotFoundError(f"{sweep_dir} has neither sweep.json nor runs/: not a sweep directory")
    if baseline is not None and baseline not in infos:
        raise ValueError(f"--baseline {baseline!r} is not a run of {sweep_dir} (runs: {', '.join(infos)})")
    rows, missing = [], []
    for name, info in infos.items():
        run_dir = Path(info.get("dir") or layout.sweep_run_dir(sweep_dir, name))
        if baseline is not None:
            compare_to = None if name == baseline else baseline
        elif "compare_to" in info:
            compare_to = info["compare_to"]
        else:
            compare_to = None if name == sweep_baseline else sweep_baseline
        path = summary_path(run_dir)
        if path is None:
            missing.append(name)
            continue
        scores, step = read_scores(path)
        finished = (run_dir / layout.DONE).exists() or path.parent.name == layout.FINAL
        rows.append(RunResult(name=name, label=info.get("label") or name, compare_to=compare_to, summary=path,
                              step=step, finished=finished, scores=scores, curve=read_curve(run_dir),
                              budget=read_plan(run_dir)))
    report = Report(rows=rows, missing=missing, threshold=threshold)
    add_paired(report)
    return report


def add_paired(report: Report) -> None:
    """Each row's paired-bootstrap deltas against its comparison row, from the two runs' predictions.jsonl."""
    from eval_hooks.intervals import paired_deltas

    cache: dict[Path, list[dict] | None] = {}

    def predictions(summary: Path) -> list[dict] | None:
        path = summary.parent / "predictions.jsonl"
        if path not in cache:
            cache[path] = ([json.loads(x) for x in path.read_text().splitlines() if x.strip()]
                           if path.is_file() else None)
        return cache[path]

    for run in report.rows:
        ref = report.reference(run)
        if ref is None:
            continue
        mine, theirs = predictions(run.summary), predictions(ref.summary)
        if mine and theirs:
            data = json.loads(run.summary.read_text())
            missing = set((data.get("judge") or {}).get("skipped_records") or {})
            run.paired = paired_deltas(theirs, mine, data.get("mode") or "renormalize",
                                       weighting_label(data), missing=missing)


# ---------------------------------------------------------------------------- table output

def _points(score: float | None) -> str:
    return "-" if score is None else f"{100.0 * score:.1f}"


def _signed(delta: float) -> str:
    text = f"{delta:+.1f}"
    return "0.0" if text in ("+0.0", "-0.0") else text


def cell(report: Report, run: RunResult, key: str) -> str:
    """``24.1 (+3.2 ▲ [+1.0, +5.4])``: score x100, delta in points, ▲ / ▼ when its paired 95% interval (shown)
    excludes 0; △ / ▽ beyond the threshold when no interval could be computed; ``missing`` (no LLM judge)."""
    if key in run.evaluation["missing"]:
        return "missing"
    text = _points(run.scores.get(key))
    delta = report.delta(run, key)
    if delta is None:
        return text
    found = report.interval(run, key)
    klass = report.klass(delta, run, key)
    if found is None:
        return f"{text} ({_signed(delta)}{_UNTESTED[klass]})"
    lo, hi = found["ci95"]
    return f"{text} ({_signed(delta)}{_MARK[klass]} [{_signed(lo)}, {_signed(hi)}])"


def avg_label(report: Report) -> str:
    """The Avg column's header: with the weighting when every row used the same one."""
    names = {run.evaluation["weights"] for run in report.rows}
    return f"Avg ({names.pop()})" if len(names) == 1 else "Avg"


def to_markdown(report: Report) -> str:
    cols = [(avg_label(report), AVG[1]), *columns()[1:]]
    lines = ["| Run | " + " | ".join(label for label, _ in cols) + " |",
             "|---|" + "---:|" * len(cols)]
    notes = []
    mixed = avg_label(report) == "Avg"
    for run in report.rows:
        label = run.label
        if mixed:
            label += f" [Avg: {run.evaluation['weights']}]"
        if run.evaluation["note"]:
            notes.append(f"{run.label}: {run.evaluation['note']}")
        ref = report.reference(run)
        if run.compare_to is None or run.compare_to == run.name:
            label += " (baseline)"
        elif ref is None:
            notes.append(f"{run.label}: its comparison run {run.compare_to!r} has no summary, so no deltas")
        if not run.finished:
            label += " †"
            notes.append(f"{run.label}: not finished; scores from evaluation step {run.step} ({run.summary})")
        lines.append(f"| {label} | " + " | ".join(cell(report, run, key) for _, key in cols) + " |")
    refs = sorted({r.compare_to for r in report.rows if report.reference(r) is not None})
    lines += ["", f"Scores x100; deltas in points against {', '.join(refs) or 'no baseline'}, with their paired 95% "
              "interval (bootstrap over the records both runs evaluated, eval_hooks/intervals.py); ▲ gain / ▼ drop "
              "only when that interval excludes 0"
              + (f"; △ / ▽: beyond ±{report.threshold:g} points, not tested (a run without predictions.jsonl)"
                 if any(report.delta(r, k) is not None and report.interval(r, k) is None
                        for r in report.rows for _, k in cols) else "") + "."]
    smallest = report.resolvable()
    lines.append("Smallest resolvable Avg delta at this benchmark size: "
                 + (f"{smallest:.1f} points (median half-width of the rows' paired Avg intervals)."
                    if smallest is not None else "unknown (no paired intervals: predictions.jsonl missing)."))
    lines.append(f"Avg weighting: {'; '.join(sorted({WEIGHTING_NOTES.get(w, w) for w in _each(report, 'weights')}))}. "
                 f"Evaluation protocol: {', '.join(sorted(_each(report, 'protocol')))}"
                 + ("" if _each(report, "protocol") == {"paper"} else
                    " (only rows evaluated with eval.protocol=paper use the benchmark's released lmms-eval settings)")
                 + ".")
    lines += [f"- {n}" for n in notes]
    lines += budget_lines([(r.label, r.budget) for r in report.rows],
                          reference=next((r.label for r in report.rows if r.compare_to in (None, r.name)), None))
    if report.missing:
        lines.append(f"- no summary yet (not in the table): {', '.join(report.missing)}")
    return "\n".join(lines) + "\n"


WEIGHTING_NOTES = {
    "lmms_eval": "lmms_eval (the public scorer's weights: L2 Underst. 1 / Memory 1)",
    "paper_table": "paper_table (L2 Underst. 0.70 / Memory 0.30: reproduces the Avg of the paper's tables)",
}


def _each(report: Report, what: str) -> set[str]:
    return {run.evaluation[what] for run in report.rows}


def to_csv(report: Report) -> str:
    """One row per run: score, delta and class per column, in points, unrounded; the Avg's weighting and the
    evaluation protocol of the row."""
    cols = columns()
    out = io.StringIO()
    writer = csv.writer(out)
    header = ["run", "label", "compare_to", "step", "finished", "summary", "weights", "protocol"]
    for label, _ in cols:
        header += [label, f"{label} delta", f"{label} class", f"{label} ci95 lo", f"{label} ci95 hi",
                   f"{label} significant"]
    writer.writerow(header)
    for run in report.rows:
        ref = report.reference(run)
        row = [run.name, run.label, ref.name if ref else "", run.step, run.finished, str(run.summary),
               run.evaluation["weights"], run.evaluation["protocol"]]
        for _, key in cols:
            score = None if key in run.evaluation["missing"] else run.scores.get(key)
            delta = report.delta(run, key)
            found = report.interval(run, key) if delta is not None else None
            row += ["" if score is None else repr(100.0 * score), "" if delta is None else repr(delta),
                    report.klass(delta, run, key) or ""]
            row += ["", "", ""] if found is None else [repr(found["ci95"][0]), repr(found["ci95"][1]),
                                                       found["significant"]]
        writer.writerow(row)
    return out.getvalue()
