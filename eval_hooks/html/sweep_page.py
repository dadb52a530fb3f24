"""A sweep's page: ``SWEEP_DIR/report.html`` with the Table 2/3 layout, deltas, intervals and significance marks
(where the data has them), the delta heatmap, learning curves, the report's PNG figures, and links to each row's
run page. The markdown/CSV tables and PNGs under SWEEP_DIR/report/ are written as before (sweep_report.py).

Intervals: a cell shows a score's 95% interval when its summary.json node has ``ci95``, else "no interval".
Significance: a delta is marked * (significant) or ns when a paired delta interval is known for that cell
(:func:`paired` reads it, from eval_hooks.intervals when that module and both runs' predictions exist); none is
ever made up.
"""

from __future__ import annotations

import base64
import json
import os
from html import escape
from pathlib import Path
from typing import Any

from eval_hooks import layout
from eval_hooks.html.page import document
from eval_hooks.html.svg import Series, line_chart
from eval_hooks.io import atomic_write_text
from eval_hooks.report import Report, RunResult, avg_label, columns

REPORT_HTML = "report.html"


def _tree_nodes(summary_path: Path | None) -> dict[str, dict[str, Any]]:
    if summary_path is None:
        return {}
    tree = json.loads(summary_path.read_text()).get("tree") or {}
    out, stack = {}, [tree]
    while stack:
        node = stack.pop()
        out[node.get("key", "")] = node
        stack += node.get("children", [])
    return out


def _predictions(summary_path: Path | None) -> list[dict[str, Any]] | None:
    path = summary_path.parent / "predictions.jsonl" if summary_path is not None else None
    if path is None or not path.is_file():
        return None
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def paired(report: Report, run: RunResult) -> dict[str, dict[str, Any]]:
    """Node key -> paired delta ``{"delta", "ci95", "significant"}`` of ``run`` against its comparison row; {} when
    eval_hooks.intervals is not available or a run has no predictions."""
    ref = report.reference(run)
    if ref is None:
        return {}
    try:
        from eval_hooks.intervals import paired_deltas
    except ImportError:
        return {}
    a, b = _predictions(ref.summary), _predictions(run.summary)
    if not a or not b:
        return {}
    data = json.loads(run.summary.read_text())
    return paired_deltas(a, b, mode=data.get("mode", "renormalize"), weighting=run.evaluation["weights"],
                         missing=data.get("missing") or ())


def _run_link(sweep_dir: Path, run_dir: Path) -> str | None:
    page = run_dir / REPORT_HTML
    return os.path.relpath(page, sweep_dir) if page.is_file() else None


def _has_ci(node: dict[str, Any]) -> bool:
    ci = node.get("ci95")
    return isinstance(ci, (list, tuple)) and len(ci) == 2 and None not in ci


def _cell(report: Report, run: RunResult, key: str, node: dict[str, Any], pair: dict[str, Any] | None,
          any_ci: bool = True) -> str:
    """``any_ci`` False: no cell of the table has an interval, so the table says "no interval" once, not per cell."""
    if key in run.evaluation["missing"]:
        return '<td class="num">missing</td>'
    score = run.scores.get(key)
    text = "-" if score is None else f"{100 * score:.1f}"
    ci = node.get("ci95")
    interval = (f'<div class="muted">[{100 * ci[0]:.1f}, {100 * ci[1]:.1f}]</div>' if _has_ci(node)
                else '<div class="muted">no interval</div>' if any_ci else "")
    delta = report.delta(run, key)
    klass = report.klass(delta) or ""
    mark = ""
    if delta is not None:
        d = f"{delta:+.1f}"
        if pair:
            sig = bool(pair.get("significant"))
            lo, hi = pair["ci95"]
            mark = (f' <span class="{"sig" if sig else "muted"}" title="paired 95% interval of the delta: '
                    f'[{100 * lo:+.1f}, {100 * hi:+.1f}]">{"*" if sig else "ns"}</span>')
        text += f" ({d}{' ▲' if klass == 'gain' else ' ▼' if klass == 'drop' else ''}){mark}"
    return f'<td class="num {klass}" data-key="{escape(key)}">{text}{interval}</td>'


def _heat(delta: float | None, lim: float) -> str:
    if delta is None:
        return "#eeeeee"
    t = max(-1.0, min(1.0, delta / lim)) if lim else 0.0
    if t >= 0:
        return f"rgb({int(255 - 150 * t)},{int(255 - 40 * t)},{int(255 - 150 * t)})"
    return f"rgb(255,{int(255 + 150 * t)},{int(255 + 150 * t)})"


def render_sweep_page(report: Report, sweep_dir: str | Path, figures_dir: Path | None = None,
                      run_dirs: dict[str, Path] | None = None) -> str:
    sweep_dir = Path(sweep_dir)
    cols = [(avg_label(report), ""), *columns()[1:]]
    run_dirs = run_dirs or {}
    head = "<tr><th>run</th>" + "".join(f"<th>{escape(label)}</th>" for label, _ in cols) + "</tr>"
    body, pairs_found = [], False
    trees = {run.name: _tree_nodes(run.summary) for run in report.rows}
    any_ci = any(_has_ci(trees[run.name].get(key, {})) for run in report.rows for _, key in cols)
    for run in report.rows:
        nodes = trees[run.name]
        pair = paired(report, run)
        pairs_found |= bool(pair)
        link = _run_link(sweep_dir, run_dirs.get(run.name, run.summary.parents[2]))
        label = escape(run.label) + ("" if report.reference(run) else " (baseline)") + ("" if run.finished else " †")
        label = f'<a href="{escape(link)}">{label}</a>' if link else f'{label} <span class="muted">(no run page)</span>'
        body.append(f'<tr data-run="{escape(run.name)}"><th>{label}</th>'
                    + "".join(_cell(report, run, key, nodes.get(key, {}), pair.get(key), any_ci) for _, key in cols)
                    + "</tr>")
    table = f'<table id="sweep-table">{head}{"".join(body)}</table>'
    notes = [f"Scores x100; deltas in points against each row's comparison run; ▲ gain (>= +{report.threshold:g}), "
             f"▼ drop (<= -{report.threshold:g}); † not finished."]
    if not any_ci:
        notes.append("No interval: no summary of these runs carries a 95% interval (ci95) for these columns.")
    notes.append("* / ns: the paired 95% interval of the delta excludes / includes 0." if pairs_found else
                  "No significance marks: no paired delta intervals for these runs (eval_hooks.intervals and both "
                  "runs' predictions.jsonl are needed).")
    if report.missing:
        notes.append(f"No summary yet (not in the table): {', '.join(report.missing)}.")
    table_html = table + "".join(f'<p class="muted">{escape(n)}</p>' for n in notes)

    # delta heatmap (HTML cells coloured by delta)
    deltas = [[report.delta(r, key) for _, key in cols] for r in report.rows if report.reference(r)]
    rows = [r for r in report.rows if report.reference(r)]
    finite = [abs(d) for row in deltas for d in row if d is not None]
    lim = max(finite + [report.threshold])
    if rows:
        heat = ("<table id=\"delta-heatmap\"><tr><th></th>" + "".join(f"<th>{escape(lb)}</th>" for lb, _ in cols)
                + "</tr>" + "".join(
                    f"<tr><th>{escape(r.label)}</th>" + "".join(
                        f'<td class="num" style="background:{_heat(d, lim)}">{"n/a" if d is None else f"{d:+.1f}"}'
                        "</td>" for d in row) + "</tr>" for r, row in zip(rows, deltas)) + "</table>")
    else:
        heat = '<p class="muted">no row has a comparison run: no deltas</p>'

    curves = [Series(r.label, [(float(s), 100.0 * v) for s, v in r.curve]) for r in report.rows if r.curve]
    curve_html = line_chart("bench/overall during training", curves, "score x100") if curves else \
        '<p class="muted">no run logged bench/overall over steps</p>'

    figs = []
    for name in ("deltas_heatmap.png", "ability_correlation.png", "learning_curves.png"):
        path = (figures_dir or sweep_dir / "report") / name
        if path.is_file():
            b64 = base64.b64encode(path.read_bytes()).decode()
            figs.append(f'<figure><img alt="{name}" src="data:image/png;base64,{b64}" style="max-width:100%">'
                        f"<figcaption class=\"muted\">{escape(str(path))}</figcaption></figure>")
    figs_html = "".join(figs) or '<p class="muted">no PNG figures (launch/report.py --no-figures, or too few runs)</p>'
    sections = [("table", "Table (paper layout)", table_html), ("heatmap", "Delta heatmap (points)", heat),
                ("curves", "Learning curves", curve_html), ("figures", "Figures (PNG, as in report/)", figs_html)]
    return document(f"Sweep {sweep_dir.name}", sections, subtitle=str(sweep_dir.resolve()))


def write_sweep_page(report: Report, sweep_dir: str | Path, figures_dir: Path | None = None,
                     run_dirs: dict[str, Path] | None = None, out: Path | None = None) -> Path:
    out = out or Path(sweep_dir) / REPORT_HTML
    return atomic_write_text(out, render_sweep_page(report, sweep_dir, figures_dir, run_dirs))


def run_dirs_of(report: Report) -> dict[str, Path]:
    """Each row's run directory (its summary is RUN_DIR/eval/<step>/summary.json)."""
    return {r.name: r.summary.parents[2] for r in report.rows if r.summary is not None
            and r.summary.parent.parent.name == layout.EVAL_DIR}
