"""The demo's GRPO stage (scripts/demo.sh step 5: `launch/grpo.py recipe=quickstart_rl` from the think-format
SFT of train/quickstart_rl.py) learns and shows auto-think, and the demo's summary says so.

Same recipe, same prompts and the same SFT as the demo (the SFT is the session fixture the GRPO learning
test shares); only the stand-in is the test session's (its rl_l1 / rl_l3 rows equal the demo's: one seed).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from fixtures_grpo import shared_think_sft

pytestmark = pytest.mark.slow  # one 30-step GRPO run of the tiny model (~2 min on 2 idle cores)

REPO = Path(__file__).resolve().parents[1]


def _mean(rows: list[dict], key: str) -> float:
    values = [r[key] for r in rows if key in r]
    assert values, f"no {key} in the metrics"
    return statistics.mean(values)


def test_demo_grpo_stage_learns_and_auto_think_shortens_l1_not_l3(tmp_path_factory, tmp_path):
    standin, _, sft_dir = shared_think_sft(tmp_path_factory)
    demo = tmp_path / "demo_out"
    out = demo / "grpo"
    cmd = [sys.executable, str(REPO / "launch" / "grpo.py"), "recipe=quickstart_rl", f"model.name_or_path={sft_dir}",
           f"data.root={standin}", f"train.output_dir={out}", "train.report_to=[jsonl]"]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, timeout=900,
                          env={**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-4000:]
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines() if '"train/reward"' in line]
    assert len(rows) == 30
    first, last = rows[:5], rows[-5:]
    print(json.dumps({k: [round(r[k], 2) for r in rows if k in r] for k in (
        "train/rewards/accuracy/mean", "train/frac_reward_zero_std", "train/L1/reward", "train/L3/reward",
        "train/L1/completion_length", "train/L3/completion_length", "train/L3/think_fraction")}))

    # Learning: the accuracy reward and each level's reward rise; most groups carry a GRPO signal.
    acc = "train/rewards/accuracy/mean"
    assert _mean(last, acc) >= _mean(first, acc) + 0.1
    for lv in ("L1", "L3"):
        assert _mean(last, f"train/{lv}/reward") > _mean(first, f"train/{lv}/reward") + 0.05, lv
    assert _mean(rows, "train/frac_reward_zero_std") < 0.4
    # The held-out RL prompts (never trained on) are evaluated at the start and the end with intervals; after GRPO
    # every answer is still in <answer> tags. Their accuracy does not rise at this scale (README, "What the GRPO
    # stage shows"): the test records it, the demo's summary prints it with the intervals.
    steps = sorted((d for d in (out / "eval").glob("step_*")), key=lambda d: int(d.name.split("_")[1]))
    assert [d.name for d in steps] == ["step_0", "step_30"]
    for d in steps:
        s = json.loads((d / "summary.json").read_text())
        assert s["num_samples"] == 95 and s["answer_extraction"]["answer_tag"] == 95, d.name
        assert len(s["tree"]["ci95"]) == 2
        print(d.name, round(s["tree"]["score"], 3), [round(x, 3) for x in s["tree"]["ci95"]])

    # Auto-think: L1 completions end short and without thinking, L3 keeps its think blocks and ends longer.
    l1, l3 = _mean(last, "train/L1/completion_length"), _mean(last, "train/L3/completion_length")
    assert l1 < _mean(first, "train/L1/completion_length") and l1 + 10 < l3, (l1, l3)
    assert _mean(last, "train/L1/think_fraction") < 0.2 and _mean(last, "train/L3/think_fraction") >= 0.8

    # The demo's summary reads this run the same way (no SFT or hierarchy runs here: it says so, and draws).
    summary = subprocess.run([sys.executable, str(REPO / "scripts" / "demo_summary.py"), str(demo)],
                             capture_output=True, text=True, cwd=REPO, timeout=120)
    assert summary.returncode == 0, summary.stderr
    text = summary.stdout
    assert "it rose beyond its noise." in text and "NO LEARNING" not in text
    assert "L1 is shorter." in text
    assert "GRPO held-out accuracy on the RL task" in text and "step_0 -> step_30" in text
    # ... with the paired delta on the same records, which says "gain" only when its interval excludes 0
    assert "paired delta (after - before, same records, 95% paired bootstrap interval):" in text
    assert "(95 records) gain: the interval excludes 0" in text or "(95 records) no change shown" in text \
        or "(95 records) LOSS" in text
    assert (demo / "report" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
