"""Corrupt and adversarial data rows through the SFT trainer, under both ``data.on_bad_sample`` policies.

The bad rows (tests/fixtures_reliability.py): a missing image, a truncated PNG, a zero-byte file, a text file
named .png, a decompression bomb (a PNG header claiming 30000x30000 pixels), two <image> tags for one image,
an empty assistant turn, a malformed JSON line, and a sample longer than data.max_length; plus a big but legal
3000x2000 photo that must be downscaled and trained on, not skipped.

tests/test_data_readers.py and tests/test_data_mixer.py check each reason in the readers and the mixer; this
file checks what a training run does with them: with ``skip``, the run trains on exactly the good rows and
its train_summary.json counts every bad row under its reason; with ``error``, the run stops at the bad row
naming file, row and reason, and leaves no final model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from fixtures_reliability import bad_rows, launch_sft, sft_overrides, write_corpus
from safetensors.torch import load_file

from train import checkpoint as ckpt

pytestmark = pytest.mark.slow

N_GOOD = 24
REASONS = [reason for _, reason in bad_rows()]


def bad_row_numbers() -> dict[str, int]:
    """1-based file row of each bad row: write_corpus puts them at rows 3, 6, 9, ..."""
    return {reason: 3 * (k + 1) for k, reason in enumerate(REASONS)}


def one_epoch(root: Path, registry: Path, out: Path, policy: str) -> list[str]:
    return sft_overrides(root, registry, out, f"data.on_bad_sample={policy}", "data.max_skip_fraction=0.5",
                         "train.max_steps=-1", "mix.budget.value=1", "mix.upsample=false", "train.save_steps=4")


def test_skip_trains_on_every_good_row_and_counts_each_bad_one_by_reason(tmp_path):
    root = tmp_path / "data"
    registry = write_corpus(root, n_good=N_GOOD, bad=[row for row, _ in bad_rows()], big_legal=True)
    out, log = tmp_path / "run", tmp_path / "skip.log"
    proc = launch_sft(one_epoch(root, registry, out, "skip"), log)
    text = log.read_text()
    assert proc.returncode == 0, text[-3000:]
    summary = json.loads((out / "train_summary.json").read_text())
    assert summary["skipped_by_reason"] == dict.fromkeys(sorted(REASONS), 1), summary
    assert summary["steps"] == N_GOOD // 2  # every good row once (batches of 2), the big photo included
    assert summary["samples_seen"] - summary["samples_skipped"] == N_GOOD
    # The first skips are logged one by one (the rest are counted): each names the right file, row and reason.
    logged = re.findall(r"skip(?:ping|ped) bad sample: .*?(\S+train\.jsonl), row (\d+): (\w+)", text)
    assert len({why for _, _, why in logged}) >= 5, logged
    expected = bad_row_numbers()
    for file, row, why in logged:
        assert file == str(root / "train.jsonl") and int(row) == expected[why], (file, row, why)
    assert load_file(str(out / "model.safetensors"))  # the final model was written and loads


@pytest.fixture(scope="module")
def tiny_threads():
    torch.set_num_threads(1)


@pytest.mark.parametrize("reason", REASONS)
def test_error_stops_at_the_bad_row_naming_file_row_and_reason(tmp_path, reason, tiny_threads):
    """In-process (the trainer's own code path, no launcher start-up per reason): one bad row among good ones."""
    from train.recipe import load_recipe
    from train.sft import run

    row = next(r for r, why in bad_rows() if why == reason)
    root = tmp_path / "data"
    registry = write_corpus(root, n_good=8, bad=[row])
    out = tmp_path / "run"
    recipe = load_recipe(None, one_epoch(root, registry, out, "error"))
    with pytest.raises(Exception) as err:
        run(recipe, [])
    message = str(err.value)
    assert f"{root / 'train.jsonl'}, row 3: {reason}" in message, message
    assert not (out / "model.safetensors").exists() and not (out / "train_summary.json").exists()
    for c in ckpt.complete_checkpoints(out):  # whatever was saved before the bad row is whole
        assert load_file(str(c / "model.safetensors"))
    assert not (out / ckpt.STAGING).exists()


def test_error_policy_from_the_command_line_exits_1_naming_the_row(tmp_path):
    root = tmp_path / "data"
    registry = write_corpus(root, n_good=8, bad=[next(r for r, why in bad_rows() if why == "truncated_image")])
    out, log = tmp_path / "run", tmp_path / "error.log"
    proc = launch_sft(one_epoch(root, registry, out, "error"), log)
    lines = log.read_text().splitlines()
    assert proc.returncode == 1, "\n".join(lines[-30:])
    named = [line for line in lines if f"{root / 'train.jsonl'}, row 3: truncated_image" in line]
    assert named and "data.on_bad_sample" in named[-1], lines[-30:]  # the row, the reason, and how to skip instead
    assert named[-1].startswith("launch/sft.py: error: ") and "Traceback" not in log.read_text(), lines[-30:]
    assert not (out / "model.safetensors").exists()
