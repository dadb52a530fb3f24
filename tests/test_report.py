"""launch/report.py: the paper's table layout from a sweep's summaries, and the figures."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from eval_hooks.report import PAPER_COLUMNS, collect, columns, to_markdown
from eval_hooks.sweep_report import main
from tests.fixtures_sweep import STANDIN, leaf_scores, write_summary

REPO = Path(__file__).resolve().parents[1]
QUALITIES = {"base": 0.30, "plus_a": 0.45, "plus_b": 0.60, "plus_c": 0.25}


def node_score(summary_path: Path, key: str) -> float | None:
    """A node's score read straight from summary.json's nested tree (independent of the report code)."""
    def find(node):
        if node["key"] == key:
            return node
        for child in node.get("children", ()):
            hit = find(child)
            if hit is not None:
                return hit
        return None

    return find(json.loads(summary_path.read_text())["tree"])["score"]


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory) -> Path:
    """A sweep of four stand-in runs made with launch/sweep.py --local, plus one run that never finished."""
    root = tmp_path_factory.mktemp("report")
    runs = "\n".join(f"  - {{name: {n}, label: 'Label {n}', overrides: {{standin.quality: {q}}}}}"
                     for n, q in QUALITIES.items())
    (root / "sweep.yaml").write_text(f"""
name: report_test
baseline: base
defaults:
  launcher: {STANDIN.relative_to(REPO)}
  overrides: {{standin.steps: 4}}
  slurm: {{gpus_per_node: 0, cpus_per_task: 1, time: "10:00", signal_secs: 30}}
runs:
{runs}
  - {{name: broken, overrides: {{standin.fail: true}}}}
""")
    out = subprocess.run([sys.executable, "launch/sweep.py", str(root / "sweep.yaml"), "--local", "--sweep-dir",
                          str(root / "sw")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 1, out.stdout + out.stderr  # "broken" fails on purpose
    return root / "sw"


def test_table_deltas_equal_the_differences_of_the_summaries(sweep_dir, capsys):
    assert main([str(sweep_dir), "--threshold", "1.5"]) == 0
    printed = capsys.readouterr().out
    table_md = (sweep_dir / "report/table.md").read_text()
    assert table_md in printed
    header = table_md.splitlines()[0]
    assert header == ("| Run | Avg (lmms_eval) | Geom. | Motion | Rel. | Local. | Orient. | Underst. | Memory | "
                      "Caus. Reas. | Seq. Plan. | Goal Exec. | Open Expl. |")
    assert "Avg weighting: lmms_eval (the public scorer's weights" in table_md
    assert "no summary yet (not in the table): broken" in table_md

    rows = list(csv.DictReader(io.StringIO((sweep_dir / "report/table.csv").read_text())))
    assert [r["run"] for r in rows] == list(QUALITIES)
    base_summary = sweep_dir / "runs/base/eval/final/summary.json"
    checked = 0
    for row in rows:
        summary = sweep_dir / "runs" / row["run"] / "eval/final/summary.json"
        assert row["summary"] == str(summary) and row["finished"] == "True"
        for label, key in columns():
            score = node_score(summary, key)
            assert float(row[label]) == pytest.approx(100 * score, abs=1e-9)
            if row["run"] == "base":
                assert row[f"{label} delta"] == "" and row[f"{label} class"] == ""
                continue
            delta = 100 * (score - node_score(base_summary, key))
            assert float(row[f"{label} delta"]) == pytest.approx(delta, abs=1e-9)
            expected = "gain" if delta >= 1.5 else "drop" if delta <= -1.5 else "neutral"
            assert row[f"{label} class"] == expected
            checked += 1
    assert checked == 3 * 12
    classes = {r[f"{label} class"] for r in rows for label, _ in columns()}
    assert {"gain", "drop"} <= classes  # the qualities differ enough to produce both

    # the markdown cell shows the same numbers, rounded: score (delta marker)
    plus_b = next(line for line in table_md.splitlines() if line.startswith("| Label plus_b |"))
    avg = 100 * node_score(sweep_dir / "runs/plus_b/eval/final/summary.json", "")
    avg_delta = avg - 100 * node_score(base_summary, "")
    assert f"| {avg:.1f} ({avg_delta:+.1f} △) |" in plus_b  # no predictions.jsonl: beyond the threshold, untested
    assert "| Label base (baseline) |" in table_md


def test_figures_are_valid_pngs(sweep_dir):
    assert main([str(sweep_dir), "--out", str(sweep_dir / "figs")]) == 0
    for name in ("deltas_heatmap.png", "ability_correlation.png", "learning_curves.png"):
        path = sweep_dir / "figs" / name
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        with Image.open(path) as img:
            img.verify()
        with Image.open(path) as img:
            assert img.size[0] > 300 and img.size[1] > 150


def test_correlation_and_delta_matrices(sweep_dir):
    import numpy as np

    from eval_hooks.figures import ability_correlation, delta_matrix

    report = collect(sweep_dir)
    labels, corr = ability_correlation(report)
    assert labels == [label for label, _ in PAPER_COLUMNS]
    scores = np.array([[r.scores[key] for _, key in PAPER_COLUMNS] for r in report.rows])
    assert np.allclose(corr, np.corrcoef(scores.T), equal_nan=True)
    assert np.allclose(np.diag(corr), 1.0)
    rows, cols, values = delta_matrix(report)
    assert rows == ["Label plus_a", "Label plus_b", "Label plus_c"] and cols[0] == "Avg"
    assert values[1, 0] == pytest.approx(report.delta(report.row("plus_b"), ""))


def test_learning_curves_and_unfinished_runs(tmp_path):
    """A run without DONE and with only a step summary is flagged; curves come from metrics.jsonl."""
    runs = tmp_path / "runs"
    for name, quality in (("x", 0.2), ("y", 0.5)):
        write_summary(runs / name, {k: quality for k in leaf_scores(name, quality)}, step=10)
        (runs / name / "metrics.jsonl").write_text("".join(
            json.dumps({"step": s, "bench/overall": quality * s / 10}) + "\n" for s in (0, 5, 10))
            + json.dumps({"step": 10, "train/loss": 0.1}) + "\nnot json\n")
    (runs / "x" / "DONE").write_text("done\n")
    report = collect(tmp_path, baseline="x")
    assert report.row("y").curve == [(0, 0.0), (5, 0.25), (10, 0.5)]
    assert report.row("x").finished and not report.row("y").finished
    assert report.delta(report.row("y"), "L1/Geometry") == pytest.approx(30.0)
    md = to_markdown(report)
    assert "| y † |" in md and "y: not finished; scores from evaluation step 10" in md
    assert main([str(tmp_path), "--baseline", "x", "--strict", "--no-figures"]) == 1
    assert main([str(tmp_path), "--baseline", "nope"]) == 2
    assert main([str(tmp_path / "nothing")]) == 2


def test_columns_follow_the_taxonomy():
    from rewards import taxonomy as tx

    assert len(PAPER_COLUMNS) == 11 == len(tx.abilities())
    assert {key for _, key in PAPER_COLUMNS} == {a.key for a in tx.abilities()}


def _summary(run_dir: Path, scores: dict[str, float], weighting: str, missing=(), protocol="paper") -> Path:
    """A reference-mode summary.json written the way the evaluator writes it, with a weighting and missing leaves."""
    from eval_hooks.io import atomic_write_json
    from eval_hooks.tree import tree_dict
    from rewards import taxonomy as tx

    agg = tx.aggregate_nodes({k: v for k, v in scores.items() if k not in missing}, mode="reference",
                             weighting=weighting, missing=missing)
    judge = {"configured": False, "policy": "skip", "skipped_records": {k: 4 for k in missing}}
    return atomic_write_json(run_dir / "eval/final/summary.json", {
        "format": 1, "step": "final", "protocol": protocol, "mode": "reference", "weights": weighting,
        "overall": agg.overall, "num_samples": 27, "judge": judge, "missing": sorted(agg.missing),
        "tree": tree_dict(agg)})


def test_the_table_names_the_weighting_and_reweights_on_request(tmp_path, capsys):
    from rewards import taxonomy as tx

    scores = {k: v for k, v in leaf_scores("x", 0.4).items()}
    _summary(tmp_path / "runs/a_base", scores, "paper_table")
    _summary(tmp_path / "runs/b_lmms", scores, "lmms_eval", protocol="quick")
    motion = "L2/Underst./Motion Understanding"
    _summary(tmp_path / "runs/c_nojudge", scores, "paper_table", missing=[motion])
    assert main([str(tmp_path), "--no-figures", "--baseline", "a_base"]) == 0
    table = (tmp_path / "report/table.md").read_text()
    assert table.splitlines()[0].startswith("| Run | Avg | Geom.")  # mixed weightings: labelled per row
    a_row = next(x for x in table.splitlines() if x.startswith("| a_base [Avg: paper_table]"))
    b_row = next(x for x in table.splitlines() if x.startswith("| b_lmms [Avg: lmms_eval]"))
    paper = tx.aggregate_nodes(scores, mode="reference", weighting="paper_table").overall
    lmms = tx.aggregate_nodes(scores, mode="reference", weighting="lmms_eval").overall
    assert abs(paper - lmms) > 0.001
    assert f"| {100 * paper:.1f} |" in a_row and f"| {100 * lmms:.1f} |" in b_row  # no Avg delta across weightings
    c_row = next(x for x in table.splitlines() if x.startswith("| c_nojudge"))
    assert c_row.split("|")[2].strip() == "missing" and c_row.split("|")[8].strip() == "missing"  # Avg, Underst.
    assert f"c_nojudge: missing (no LLM judge, eval.judge=skip): {motion} (4 records)" in table
    assert "Evaluation protocol: paper, quick (only rows evaluated with eval.protocol=paper" in table
    rows = {r["run"]: r for r in csv.DictReader(io.StringIO((tmp_path / "report/table.csv").read_text()))}
    assert (rows["b_lmms"]["weights"], rows["b_lmms"]["protocol"]) == ("lmms_eval", "quick")
    assert rows["c_nojudge"]["Avg"] == "" and rows["c_nojudge"]["Underst."] == ""

    assert main([str(tmp_path), "--no-figures", "--baseline", "a_base", "--weights", "paper_table"]) == 0
    table = (tmp_path / "report/table.md").read_text()
    assert table.splitlines()[0].startswith("| Run | Avg (paper_table) | Geom.")
    b_row = next(x for x in table.splitlines() if x.startswith("| b_lmms |"))
    assert f"| {100 * paper:.1f} (0.0) |" in b_row  # re-aggregated from its leaves: equal to a_base's Avg
    assert capsys.readouterr().err == ""


def _evaluated(run_dir: Path, probs, rng, passes: int = 1) -> None:
    """summary.json + predictions.jsonl of a simulated evaluation (0/1 scores with per-record probabilities
    ``probs``, leaves x records), aggregated and intervalled as the evaluator does."""
    import numpy as np

    from eval_hooks import intervals as iv
    from eval_hooks.io import atomic_write_json, atomic_write_jsonl
    from eval_hooks.tree import aggregate_records, tree_dict
    from rewards import taxonomy as tx

    leaves = [leaf.key for leaf in tx.leaves()]
    hits = rng.random((passes,) + probs.shape) < probs
    records = [{"id": f"{i}_{j}", "where": "", "leaf": leaves[i], "score": float(hits[r, i, j]), "repeat": r}
               for r in range(passes) for i in range(probs.shape[0]) for j in range(probs.shape[1])]
    agg = aggregate_records(iv.mean_records(records), "reference", "paper_table")
    atomic_write_jsonl(run_dir / "eval/final/predictions.jsonl", records)
    atomic_write_json(run_dir / "eval/final/summary.json", {
        "format": 1, "step": "final", "protocol": "paper", "mode": "reference", "weights": "paper_table",
        "overall": agg.overall, "num_samples": int(np.prod(probs.shape)), "repeats": passes,
        "tree": tree_dict(agg, intervals=iv.node_intervals(records, "reference", "paper_table"))})


def test_paired_intervals_mark_only_significant_deltas(tmp_path):
    """Runs with predictions.jsonl: each delta shows its paired interval; ▲ only where it excludes 0; the table
    states the smallest resolvable Avg delta; the heatmap is drawn with the marks."""
    import numpy as np

    from eval_hooks.figures import significance_matrix
    from eval_hooks.sweep_report import write_report
    from rewards import taxonomy as tx

    rng = np.random.default_rng(0)
    n_leaves = len(tx.leaves())
    base = rng.uniform(0.2, 0.6, (n_leaves, 40))
    _evaluated(tmp_path / "runs/a_base", base, rng, passes=2)
    _evaluated(tmp_path / "runs/b_much_better", np.clip(base + 0.3, 0, 1), rng, passes=2)
    _evaluated(tmp_path / "runs/c_same", base, rng, passes=2)
    report = collect(tmp_path, baseline="a_base")
    better, same = report.row("b_much_better"), report.row("c_same")
    assert report.interval(better, "")["significant"] and report.klass(report.delta(better, ""), better, "") == "gain"
    for run in (better, same):
        for _, key in columns():
            found, delta = report.interval(run, key), report.delta(run, key)
            assert found["ci95"][0] - 1e-9 <= delta <= found["ci95"][1] + 1e-9
            assert report.klass(delta, run, key) != "neutral" or not found["significant"]
            assert found["significant"] == (found["ci95"][0] > 0 or found["ci95"][1] < 0)
    assert report.klass(report.delta(same, ""), same, "") == "neutral"  # same model, two draws
    table = to_markdown(report)
    row = next(x for x in table.splitlines() if x.startswith("| b_much_better"))
    lo, hi = report.interval(better, "")["ci95"]
    assert f"▲ [+{lo:.1f}, +{hi:.1f}])" in row.split("|")[2]
    smallest = report.resolvable()
    assert 0 < smallest < 10 and f"Smallest resolvable Avg delta at this benchmark size: {smallest:.1f}" in table
    written = write_report(report, tmp_path / "report")
    assert "deltas_heatmap.png" in written
    assert significance_matrix(report)[0, 0] == 1.0
    rows = {r["run"]: r for r in csv.DictReader(io.StringIO(written["table.csv"].read_text()))}
    assert rows["b_much_better"]["Avg significant"] == "True" and float(rows["b_much_better"]["Avg ci95 lo"]) > 0
