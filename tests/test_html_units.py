"""Fast checks of the page pieces and the sweep figures, without a model: tick values, intervals drawn only
when a summary has them, a run directory cut mid-write, the rollout rows from TRL's completion log, and the
two figure defects a short sweep showed (correlation all n/a, half-step ticks)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fixtures_sweep import leaf_scores, write_summary

from eval_hooks.html.run_page import render_run_page
from eval_hooks.html.svg import Series, line_chart, nice_ticks
from eval_hooks.report import PAPER_COLUMNS, Report, RunResult


def test_step_ticks_are_whole_numbers():
    assert nice_ticks(1, 3, 6, integer=True) == [1, 2, 3]
    assert all(float(t).is_integer() for t in nice_ticks(0, 7, 6, integer=True))
    svg = line_chart("loss", [Series("loss", [(1.0, 0.5), (2.0, 0.4), (3.0, 0.3)])])
    assert ">2.5<" not in svg and ">1.5<" not in svg and ">2<" in svg


def _run_with_evals(root: Path, with_ci: bool) -> Path:
    run = root / "run"
    for step, q in ((2, 0.3), (4, 0.6)):
        path = write_summary(run, leaf_scores("r", q), step=step)
        if with_ci:
            data = json.loads(path.read_text())
            stack = [data["tree"]]
            while stack:
                node = stack.pop()
                if node["score"] is not None:
                    node["ci95"] = [node["score"] - 0.05, node["score"] + 0.05]
                stack += node.get("children", [])
            path.write_text(json.dumps(data))
    (run / "metrics.jsonl").write_text(json.dumps({"step": 1, "train/loss": 2.0}) + "\n"
                                       + json.dumps({"step": 2, "train/loss": 1.5}) + "\n" + '{"step": 3, "train/lo')
    return run


def test_interval_band_only_where_the_summary_has_one(tmp_path):
    with_ci = render_run_page(_run_with_evals(tmp_path / "a", True))
    without = render_run_page(_run_with_evals(tmp_path / "b", False))
    assert 'class="band"' in with_ci and "[" in with_ci and 'class="ci"' in with_ci
    assert 'class="band"' not in without and 'class="ci"' not in without
    assert without.count("no interval") >= 5  # the tree says so per node, the curves once


def test_a_cut_metrics_line_is_a_note_not_a_failure(tmp_path):
    html = render_run_page(_run_with_evals(tmp_path, False))
    assert "metrics.jsonl: line(s) 3 not a JSON object" in html
    assert html.count("<circle") >= 2


def test_rollout_rows_from_trl_completion_log():
    from collections import deque

    from train.grpo.rollouts import batch_rows, extra_columns

    kwargs = {"level": ["L1", "L1", "L3", "L3"], "leaf": ["Distance"] * 2 + ["Route"] * 2, "id": list("aabb"),
              "answer": ["A", "A", "C", "C"], "image_paths": [["/x.png"]] * 2 + [[]] * 2}
    extra = extra_columns(kwargs, 4)
    logs = {"prompt": deque([[{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Q?"}]}]] * 4),
            "completion": deque([[{"role": "assistant", "content": t}] for t in ("A", "B", "C", "x")]),
            "rewards": {"accuracy": deque([1.0, 0.0, 1.0, float("nan")]), "format": deque([1.0, 1.0, 0.0, 0.0])},
            "advantages": deque([0.7, -0.7, 0.5, -0.5]), "extra": {k: deque(v) for k, v in extra.items()}}
    rows = batch_rows(logs, step=10, num_generations=2, weights={"accuracy": 1.0, "format": 0.5})
    assert [r["group"] for r in rows] == [0, 0, 1, 1]
    assert [r["level"] for r in rows] == ["L1", "L1", "L3", "L3"] and rows[0]["media"] == ["/x.png"]
    assert rows[0]["prompt"] == "Q?" and rows[1]["completion"] == "B" and rows[2]["answer"] == "C"
    assert rows[0]["reward"] == pytest.approx(1.5) and rows[3]["rewards"]["accuracy"] is None
    assert rows[3]["reward"] == pytest.approx(0.0) and rows[1]["advantage"] == pytest.approx(-0.7)


def _report(scores_per_run: list[dict[str, float]]) -> Report:
    rows = [RunResult(name=f"r{i}", label=f"r{i}", scores={"": 0.5, **s}) for i, s in enumerate(scores_per_run)]
    return Report(rows=rows, missing=[], threshold=1.0)


def test_correlation_figure_of_a_short_sweep_leaves_out_constant_abilities(tmp_path, capsys):
    from eval_hooks.figures import correlation_skip_reason, varying_abilities, write_figures

    keys = [k for _, k in PAPER_COLUMNS]
    flat = _report([{k: 0.0 for k in keys} for _ in range(3)])  # a quick sweep: every ability scored 0
    assert "fewer than two abilities vary" in correlation_skip_reason(flat)
    write_figures(flat, tmp_path)
    assert not (tmp_path / "ability_correlation.png").exists()
    assert "ability_correlation.png not drawn: fewer than two abilities vary" in capsys.readouterr().out

    some = _report([{**{k: 0.0 for k in keys}, keys[0]: 0.1 * i, keys[2]: 0.3 - 0.1 * i} for i in range(3)])
    keep, why = varying_abilities(some)
    assert keep == [0, 2] and len(why) == 9
    assert correlation_skip_reason(some) is None
    write_figures(some, tmp_path)
    assert (tmp_path / "ability_correlation.png").is_file()


def test_learning_curve_ticks_are_whole_steps():
    import matplotlib.pyplot as plt

    from eval_hooks.figures import curves_figure

    report = _report([{}, {}])
    report.rows[0].curve = [(1, 0.1), (2, 0.2), (3, 0.25)]
    report.rows[1].curve = [(1, 0.2), (2, 0.1), (3, 0.3)]
    fig = curves_figure(report)
    fig.canvas.draw()
    ticks = [t for t in fig.axes[0].get_xticks() if 1 <= t <= 3]
    plt.close(fig)
    assert ticks and all(float(t).is_integer() for t in ticks), ticks


def test_report_on_a_directory_that_is_neither_run_nor_sweep_is_one_line(tmp_path):
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[1]
    proc = subprocess.run([sys.executable, "launch/report.py", str(tmp_path / "nope")], cwd=repo, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "neither a run directory" in proc.stderr and "Traceback" not in proc.stderr


def _add_ci(path: Path, half: float) -> None:
    data = json.loads(path.read_text())
    stack = [data["tree"]]
    while stack:
        node = stack.pop()
        if node["score"] is not None:
            node["ci95"] = [node["score"] - half, node["score"] + half]
        stack += node.get("children", [])
    path.write_text(json.dumps(data))


def test_sweep_page_shows_intervals_where_summaries_have_them(tmp_path):
    from eval_hooks.html.sweep_page import render_sweep_page
    from eval_hooks.report import collect

    for name, q in (("base", 0.3), ("next", 0.5)):
        path = write_summary(tmp_path / "runs" / name, leaf_scores(name, q))
        if name == "next":
            _add_ci(path, 0.02)
    (tmp_path / "sweep.json").write_text(json.dumps({"runs": {n: {"dir": str(tmp_path / "runs" / n)}
                                                              for n in ("base", "next")}, "baseline": "base"}))
    report = collect(tmp_path)
    html = render_sweep_page(report, tmp_path)
    avg = 100 * report.row("next").scores[""]
    assert f"[{avg - 2:.1f}, {avg + 2:.1f}]" in html  # the summary's own interval, x100
    base_row = html.split('data-run="base"')[1].split("</tr>")[0]
    assert base_row.count("no interval") == 12  # base's summary has none: said per cell, none drawn
    assert "(no run page)" in html  # the stand-in runs have no report.html yet: no dead link


def test_video_frames_become_four_evenly_spaced_thumbnails(tmp_path):
    from PIL import Image

    from eval_hooks.html.media import Thumbnails

    frames = []
    for i in range(7):
        path = tmp_path / f"f{i}.png"
        Image.new("RGB", (300, 200), (30 * i, 0, 0)).save(path)
        frames.append(str(path))
    shown = Thumbnails(tmp_path / "page").video(frames)
    assert [s["title"] for s in shown] == [frames[0], frames[2], frames[4], frames[6]]
    for s in shown:
        with Image.open(tmp_path / "page" / s["src"]) as img:
            assert max(img.size) == 160
    gone = Thumbnails(tmp_path / "page").image(str(tmp_path / "missing.png"))
    assert "missing.png" in gone["error"]  # a medium that cannot be shown is a reason on the page


def test_a_response_with_markup_or_nan_cannot_break_the_page(tmp_path):
    run = _run_with_evals(tmp_path, False)
    rec = {"id": "x", "leaf": "L1/Geometry/Distance", "metricfunc": "multichoiceeval", "answer": "A", "score": 0.0,
           "response": "</script><script>alert(1)</script><!--", "details": {"pred": float("nan")}}
    (run / "eval" / "step_4" / "predictions.jsonl").write_text(json.dumps(rec) + "\n")
    html = render_run_page(run)
    assert "alert(1)</script>" not in html and "<!--" not in html
    assert html.count("<script") == html.count("</script>") == 2  # the samples data and the page's own script
    assert "\\u003c/script>\\u003cscript>alert(1)" in html
