"""GRPO's in-step progress (train/grpo/progress.py) on the real tiny model's generate: lines while it runs."""

from __future__ import annotations

import io
import re
import time

import torch


def test_generation_prints_progress_while_it_runs_and_changes_nothing():
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    from train.grpo.progress import install
    from train.tiny import ensure_tiny

    torch.manual_seed(0)
    model = AutoModelForImageTextToText.from_pretrained(ensure_tiny()).eval()
    tok = AutoTokenizer.from_pretrained(ensure_tiny())
    ids = tok(["hello there", "a b"], return_tensors="pt", padding=True)
    kwargs = dict(max_new_tokens=24, min_new_tokens=24, do_sample=False)
    with torch.no_grad():
        plain = model.generate(**ids, **kwargs)
    out = io.StringIO()
    progress = install(model, every=0.2, step_fn=lambda: 3, group=2, max_new=24, out=out)
    model.register_forward_hook(lambda *a: time.sleep(0.03))  # a slow model: ~0.7 s for 24 tokens
    with torch.no_grad():
        watched = model.generate(**ids, **kwargs)
    assert torch.equal(plain, watched)
    lines = out.getvalue().splitlines()
    assert len(lines) >= 3, lines
    counts = [int(re.search(r": (\d+) new tokens", line).group(1)) for line in lines]
    assert counts == sorted(counts) and counts[-1] == 2 * 24, lines  # the last line: every token of both sequences
    assert lines[0].startswith("GRPO step 3: generating 2 completions (1 prompts x 2): ")
    assert lines[-1].startswith("GRPO step 3: generated 2 completions") and "max 24" in lines[-1]
    assert progress.calls == 24
