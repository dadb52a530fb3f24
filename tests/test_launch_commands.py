"""Every user-facing command in launch/ starts, prints its usage, and the small ones do their job when run as
a user runs them (a script, not the library function behind it)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMMANDS = sorted(p.name for p in (REPO / "launch").glob("*.py") if not p.name.startswith("_"))  # _env.py: a helper


def launch(name: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "launch" / name), *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_the_commands_are_the_ones_the_readme_lists():
    readme = (REPO / "README.md").read_text()
    assert len(COMMANDS) >= 12
    assert [c for c in COMMANDS if f"launch/{c}" not in readme] == []


@pytest.mark.parametrize("name", COMMANDS)
def test_help_exits_0_and_names_the_command(name):
    proc = launch(name, "--help")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert f"launch/{name}" in proc.stdout, proc.stdout[:500]


def test_curve_prints_the_loss_and_the_held_out_accuracy(tmp_path):
    rows = [{"step": 1, "train/loss": 2.0}, {"step": 0, "bench/overall": 0.25}, {"step": 2, "train/loss": 1.0},
            {"step": 2, "bench/overall": 0.75}]
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = launch("curve.py", str(tmp_path), "--width", "10")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert "    1     2.0000  ##########" in lines and "    2     1.0000  #####" in lines
    assert "before training: 25.0 %   after training: 75.0 %" in proc.stdout


def test_curve_names_the_file_and_line_of_a_bad_row_and_a_missing_run(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "train/loss": 2.0}\n{"step": 2,\n')
    proc = launch("curve.py", str(tmp_path))
    assert proc.returncode == 2 and f"{tmp_path / 'metrics.jsonl'}:2: not a JSON object" in proc.stderr
    proc = launch("curve.py", str(tmp_path / "nope"))
    assert proc.returncode == 2 and "no metrics" in proc.stderr and "Traceback" not in proc.stderr


def test_quickstart_data_writes_the_rows_it_is_asked_for(tmp_path):
    proc = launch("quickstart_data.py", str(tmp_path), "--train", "40", "--heldout", "10", "--seed", "3")
    assert proc.returncode == 0, proc.stderr[-2000:]
    counts = {p.name: sum(1 for line in p.read_text().splitlines() if line.strip())
              for p in tmp_path.rglob("*.jsonl")}
    assert sorted(counts.values()) == [10, 40], counts


@pytest.mark.slow
def test_tiny_model_loads_through_from_pretrained(tmp_path):
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    proc = launch("tiny_model.py", "--out", str(tmp_path / "tiny"), "--seed", "0")
    assert proc.returncode == 0, proc.stderr[-2000:]
    model = Qwen2_5_VLForConditionalGeneration.from_pretrained(tmp_path / "tiny")
    processor = AutoProcessor.from_pretrained(tmp_path / "tiny")
    assert model.config.model_type == "qwen2_5_vl"
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    assert len(processor.tokenizer) <= model.config.text_config.vocab_size
