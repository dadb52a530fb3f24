"""The learning proof: the quickstart SFT (tiny model, vision frozen) takes held-out accuracy on an L1
closer/farther MCQ from chance to >= 0.8, measured by the mid-training benchmark hook at step 0 and at the end."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def quickstart_data(tmp_path_factory) -> Path:
    from train.quickstart_data import make_quickstart_data

    return make_quickstart_data(tmp_path_factory.mktemp("quickstart_data"))


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0])
def test_quickstart_learns(quickstart_data, tmp_path, seed):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(REPO / "launch" / "sft.py"), "recipe=quickstart_sft",
                           f"data.root={quickstart_data}", f"train.output_dir={out}", f"train.seed={seed}",
                           "eval.every_steps=0"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    from train.curve import read_metrics, render

    losses, bench = read_metrics(out)
    scores = dict(bench)
    print(render(losses, bench))
    first, last = scores[min(scores)], scores[max(scores)]
    assert min(scores) == 0 and max(scores) == 400  # evaluated before the first step and after the last
    assert first <= 0.6, f"step-0 accuracy {first} is not at or below chance (0.5)"
    assert last >= 0.8, f"held-out accuracy after training {last} < 0.8 (seed {seed}; all: {scores})"
    assert losses[-1][1] < 0.2 * losses[0][1]
    assert json.loads((out / "train_summary.json").read_text())["samples_skipped"] == 0
