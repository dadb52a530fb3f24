"""Figures of a sweep report (PNG, matplotlib's Agg backend: no display needed).

- deltas_heatmap.png: per-ability deltas (points) of each run against its comparison row; ``*`` where the
  paired 95% interval excludes 0, ``?`` where no interval could be computed (no predictions.jsonl);
- ability_correlation.png: Pearson correlation of the ability scores across runs (paper Fig. 5);
- learning_curves.png: bench/overall against the step, one line per run (from metrics.jsonl).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from eval_hooks.report import PAPER_COLUMNS, Report, columns  # noqa: E402


def delta_matrix(report: Report) -> tuple[list[str], list[str], np.ndarray]:
    """Row labels, column labels and deltas (NaN where missing) of every run that has a comparison row."""
    cols = columns()
    runs = [r for r in report.rows if report.reference(r) is not None]
    values = np.array([[np.nan if (d := report.delta(r, key)) is None else d for _, key in cols] for r in runs],
                      dtype=float).reshape(len(runs), len(cols))
    return [r.label for r in runs], [label for label, _ in cols], values


def significance_matrix(report: Report) -> np.ndarray:
    """Per cell of :func:`delta_matrix`: 1 significant, 0 not, NaN no paired interval."""
    cols = columns()
    runs = [r for r in report.rows if report.reference(r) is not None]
    return np.array([[np.nan if (i := report.interval(r, key)) is None else float(i["significant"]) for _, key in cols]
                     for r in runs], dtype=float).reshape(len(runs), len(cols))


def ability_correlation(report: Report) -> tuple[list[str], np.ndarray]:
    """Pearson correlation between the eleven abilities over runs; NaN where a column has no spread.

    Each pair uses the runs that scored both abilities.
    """
    labels = [label for label, _ in PAPER_COLUMNS]
    scores = np.array([[np.nan if (s := r.scores.get(key)) is None else s for _, key in PAPER_COLUMNS]
                       for r in report.rows], dtype=float).reshape(len(report.rows), len(PAPER_COLUMNS))
    n = len(labels)
    corr = np.full((n, n), np.nan)
    for i in range(n):
        for j in range(n):
            ok = ~np.isnan(scores[:, i]) & ~np.isnan(scores[:, j])
            a, b = scores[ok, i], scores[ok, j]
            if ok.sum() >= 2 and a.std() > 0 and b.std() > 0:
                corr[i, j] = float(np.corrcoef(a, b)[0, 1])
    return labels, corr


def _annotate(ax, values: np.ndarray, fmt: str) -> None:
    for (i, j), v in np.ndenumerate(values):
        ax.text(j, i, "n/a" if np.isnan(v) else format(v, fmt), ha="center", va="center", fontsize=7)


def plot_deltas(report: Report, path: Path) -> Path | None:
    rows, cols, values = delta_matrix(report)
    if not rows:
        return None
    lim = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    lim = max(lim, report.threshold, 1e-6)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * len(cols), 1.2 + 0.45 * len(rows)))
    cmap = plt.get_cmap("RdYlGn").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=-lim, vmax=lim, aspect="auto")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)), rows, fontsize=8)
    sig = significance_matrix(report)
    for (i, j), v in np.ndenumerate(values):
        mark = "" if np.isnan(v) else "?" if np.isnan(sig[i, j]) else "*" if sig[i, j] else ""
        ax.text(j, i, "n/a" if np.isnan(v) else format(v, "+.1f") + mark, ha="center", va="center", fontsize=7)
    refs = sorted({r.compare_to for r in report.rows if report.reference(r) is not None})
    smallest = report.resolvable()
    ax.set_title(f"Delta vs {', '.join(refs)} (points); * paired 95% CI excludes 0, ? no interval"
                 + (f"; resolvable Avg delta {smallest:.1f}" if smallest is not None else ""), fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.03)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


MIN_RUNS_FOR_CORRELATION = 3
"""Runs an ability needs scored for a correlation (project choice: two points always correlate +-1)."""


def varying_abilities(report: Report) -> tuple[list[int], dict[str, str]]:
    """Indices (into PAPER_COLUMNS) of the abilities whose scores vary over at least MIN_RUNS_FOR_CORRELATION
    runs, and why each other ability is left out (a short sweep often leaves most cells n/a otherwise)."""
    keep, why = [], {}
    for i, (label, key) in enumerate(PAPER_COLUMNS):
        values = [s for r in report.rows if (s := r.scores.get(key)) is not None]
        if len(values) < MIN_RUNS_FOR_CORRELATION:
            why[label] = f"scored in {len(values)} run(s)"
        elif max(values) - min(values) == 0:
            why[label] = "the same score in every run"
        else:
            keep.append(i)
    return keep, why


def correlation_skip_reason(report: Report) -> str | None:
    """Why the correlation figure is not drawn, or None when it is."""
    if len(report.rows) < MIN_RUNS_FOR_CORRELATION:
        return f"it needs >= {MIN_RUNS_FOR_CORRELATION} runs with a summary ({len(report.rows)} here)"
    keep, why = varying_abilities(report)
    if len(keep) < 2:
        return ("fewer than two abilities vary across the runs (" + "; ".join(f"{k}: {v}" for k, v in why.items())
                + ")")
    return None


def plot_correlation(report: Report, path: Path) -> Path | None:
    """Only the abilities that vary across enough runs (the others would be all n/a); the title names the rest."""
    if correlation_skip_reason(report) is not None:
        return None
    all_labels, all_corr = ability_correlation(report)
    keep, why = varying_abilities(report)
    labels = [all_labels[i] for i in keep]
    corr = all_corr[np.ix_(keep, keep)]
    fig, ax = plt.subplots(figsize=(max(4.5, 1.8 + 0.55 * len(labels)), max(3.8, 1.4 + 0.5 * len(labels))))
    cmap = plt.get_cmap("coolwarm").with_extremes(bad="#dddddd")
    im = ax.imshow(np.ma.masked_invalid(corr), cmap=cmap, vmin=-1, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    _annotate(ax, corr, ".2f")
    title = f"Pearson correlation of ability scores over {len(report.rows)} runs"
    if why:
        title += "\nleft out (no spread): " + ", ".join(why)
    ax.set_title(title, fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def plot_curves(report: Report, path: Path) -> Path | None:
    fig = curves_figure(report)
    if fig is None:
        return None
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def curves_figure(report: Report):
    """The learning-curve figure (the caller saves and closes it), or None without curves."""
    runs = [r for r in report.rows if r.curve]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for r in runs:
        steps, values = zip(*r.curve)
        ax.plot(steps, [100.0 * v for v in values], marker="o", markersize=3, label=r.label)
    ax.set_xlabel("step")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # optimizer steps: no half-step ticks
    ax.set_ylabel("bench/overall (x100)")
    ax.set_title("SpatialTree-Bench overall during training", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def write_figures(report: Report, out_dir: Path) -> dict[str, Path]:
    """The figures that the report's data allows (a figure needing more data is left out, not faked)."""
    out = {}
    reasons = {"deltas_heatmap.png": lambda: "no run has a comparison run with a summary",
               "ability_correlation.png": lambda: correlation_skip_reason(report),
               "learning_curves.png": lambda: "no run logged bench/overall to metrics.jsonl"}
    for name, plot in (("deltas_heatmap.png", plot_deltas), ("ability_correlation.png", plot_correlation),
                       ("learning_curves.png", plot_curves)):
        path = plot(report, Path(out_dir) / name)
        if path is not None:
            out[name] = path
        elif name == "learning_curves.png" and (Path(out_dir) / name).is_file():
            # the runs' own curves, drawn by the caller before the report (scripts/demo_summary.py)
            out[name] = Path(out_dir) / name
            print(f"report: {name}: no sweep run logged bench/overall; showing the one already in {out_dir}")
        else:
            print(f"report: {name} not drawn: {reasons[name]()}")
    return out
