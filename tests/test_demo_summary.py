"""scripts/demo_summary.py: the demo's per-level start/end table, its learning verdict and its curves figure,
on metrics.jsonl files written here in the launchers' format."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _write(run: Path, rows: list[dict]) -> None:
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _grpo_rows(acc: list[float], l1_len: list[float]) -> list[dict]:
    return [{"step": i + 1, "train/reward": a, "train/rewards/accuracy/mean": a, "train/frac_reward_zero_std": 0.25,
             "train/L1/reward": a, "train/L1/rewards/accuracy": a, "train/L1/think_fraction": 0.0,
             "train/L1/completion_length": n, "train/L3/reward": a, "train/L3/rewards/accuracy": a,
             "train/L3/think_fraction": 1.0, "train/L3/completion_length": 20.0} for i, (a, n) in enumerate(zip(acc, l1_len))]


def _run(out: Path) -> str:
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "demo_summary.py"), str(out)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_rising_reward_and_short_l1_are_reported_and_curves_drawn(tmp_path):
    _write(tmp_path / "sft", [{"step": 0, "bench/overall": 0.5}, {"step": 10, "train/loss": 2.0},
                              {"step": 20, "train/loss": 0.5}, {"step": 20, "bench/overall": 0.9}])
    acc = [0.2, 0.22, 0.18, 0.21, 0.19] + [0.5] * 10 + [0.8, 0.82, 0.78, 0.8, 0.81]
    _write(tmp_path / "grpo", _grpo_rows(acc, [12.0] * 5 + [8.0] * 10 + [4.0] * 5))
    text = _run(tmp_path)
    assert "SFT held-out accuracy by step: 0: 50.0, 20: 90.0" in text
    assert "L1    " in text and "12.00 -> 4.00" in text and "0.20 -> 0.80" in text
    assert "it rose beyond its noise" in text and "NO LEARNING" not in text
    assert "L1 completions end at 4.00 tokens, L3 at 20.00: L1 is shorter." in text
    png = tmp_path / "report" / "learning_curves.png"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_flat_reward_says_no_learning(tmp_path):
    _write(tmp_path / "grpo", _grpo_rows([0.3, 0.1, 0.4, 0.2, 0.3] * 6, [30.0] * 30))
    text = _run(tmp_path)
    assert "NO LEARNING shown" in text
    assert "L1 is NOT shorter (by a token or more) at this scale." in text
    assert "SFT: no metrics.jsonl" in text


def test_a_broken_metrics_line_is_one_line_error(tmp_path):
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "metrics.jsonl").write_text('{"step": 1}\nnot json\n')
    proc = subprocess.run([sys.executable, str(REPO / "scripts" / "demo_summary.py"), str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("line 2 is not JSON (Expecting value)")
    assert "Traceback" not in proc.stderr


def _summary(path: Path, overall: tuple, levels: dict) -> None:
    """An evaluation summary.json with the tree's score and ci95 per node (what eval_hooks writes)."""
    node = lambda key, s, lo, hi: {"key": key, "score": s, "ci95": [lo, hi], "count": 40}  # noqa: E731
    tree = {**node("", *overall), "children": [node(k, *v) for k, v in levels.items()]}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"tree": tree}))


def test_held_out_and_hierarchy_intervals_are_compared(tmp_path):
    _summary(tmp_path / "grpo" / "eval" / "step_0" / "summary.json", (0.40, 0.30, 0.50),
             {"L1": (0.5, 0.3, 0.7), "L3": (0.3, 0.2, 0.4)})
    _summary(tmp_path / "grpo" / "eval" / "step_30" / "summary.json", (0.45, 0.35, 0.55),
             {"L1": (0.5, 0.3, 0.7), "L3": (0.45, 0.35, 0.55)})
    _summary(tmp_path / "runs" / "2_think_sft" / "eval" / "final" / "summary.json", (0.30, 0.25, 0.35),
             {"L1": (0.6, 0.5, 0.7), "L2": (0.2, 0.1, 0.3)})
    _summary(tmp_path / "runs" / "3_after_grpo" / "eval" / "final" / "summary.json", (0.28, 0.23, 0.33),
             {"L1": (0.4, 0.3, 0.5), "L2": (0.2, 0.1, 0.3)})
    text = _run(tmp_path)
    assert "step_0 -> step_30" in text
    assert "  L3        30.0 [ 20.0,  40.0] ->   45.0 [ 35.0,  55.0]   (40 records)" in text
    assert "ROSE: L3 ended above the start's 95% interval." in text
    assert "2_think_sft -> 3_after_grpo" in text and "FELL: L1 ended below the start's 95% interval." in text
    # the curves figure gets the held-out points even without SFT runs
    assert (tmp_path / "report" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"


def _predictions(path: Path, scores: list[float], leaf: str = "L1/Geometry/Distance") -> None:
    """predictions.jsonl beside a summary: one record per score (ids shared between the two evaluations)."""
    rows = [{"id": f"r{i}", "where": f"heldout.jsonl:{i}", "leaf": leaf, "score": s} for i, s in enumerate(scores)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_held_out_gain_is_said_only_when_the_paired_interval_excludes_zero(tmp_path):
    """The paired-bootstrap delta (eval_hooks.intervals.paired_deltas) on the same records: 30 of 60 right ->
    54 of 60 is a gain; 30 -> 33 of 60 is not."""
    for name, after in (("gain", 54), ("noise", 33)):
        demo = tmp_path / name
        for step, right in (("step_0", 30), ("step_30", after)):
            d = demo / "grpo" / "eval" / step
            _summary(d / "summary.json", (right / 60, 0.0, 1.0), {"L1": (right / 60, 0.0, 1.0)})
            _predictions(d / "predictions.jsonl", [1.0] * right + [0.0] * (60 - right))
        text = _run(demo)
        if name == "gain":
            assert "  L1       +40.0 [" in text and "(60 records) gain: the interval excludes 0" in text, text
        else:
            assert "  L1        +5.0 [" in text and "(60 records) no change shown: the interval includes 0" in text, text
            assert "gain:" not in text
