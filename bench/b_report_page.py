"""Run page: seconds until a page of 5,000 evaluation records and 2,000 GRPO rollouts has loaded and run its
script in headless Chromium (target < 2 s), against an empty page in the same browser (the browser's own floor).

The run directory is synthetic (rewards.taxonomy's leaves, 60 distinct images, 1,000 logged steps, 10 hook
evaluations): what is measured is the page, not a model. Each repeat is a fresh navigation of the same file.
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

from bench.harness import Context, Figure, compare, pair_figure

RECORDS, ROLLOUTS, STEPS = 5000, 2000, 1000
TARGET_S = 2.0


def synthetic_run(root: Path, records: int = RECORDS, rollouts: int = ROLLOUTS, steps: int = STEPS) -> Path:
    """A run directory with metrics.jsonl, eval/step_N/summary.json + predictions.jsonl and rollouts.jsonl."""
    from PIL import Image

    from eval_hooks.io import atomic_write_json
    from eval_hooks.tree import SUMMARY_FORMAT, aggregate_records, tree_dict
    from rewards import taxonomy as tx

    rng = random.Random(0)
    run = root / "run"
    media = root / "media"
    media.mkdir(parents=True, exist_ok=True)
    images = []
    for i in range(60):
        path = media / f"img{i}.png"
        Image.new("RGB", (320, 240), (rng.randrange(256), rng.randrange(256), rng.randrange(256))).save(path)
        images.append(str(path))
    leaves = [leaf.key for leaf in tx.leaves()]
    with open(run.parent / "tmp_metrics", "w") as fh:
        for s in range(1, steps + 1):
            row = {"step": s, "train/loss": 1 / s, "train/lr": 1e-5, "train/reward": rng.random()}
            for lv in ("L1", "L2", "L3", "L4"):
                row[f"train/{lv}/reward"] = rng.random()
                row[f"train/{lv}/rewards/accuracy"] = rng.random()
            fh.write(json.dumps(row) + "\n")
    run.mkdir(parents=True, exist_ok=True)
    (run.parent / "tmp_metrics").replace(run / "metrics.jsonl")
    recs = []
    for i in range(records):
        leaf = leaves[i % len(leaves)]
        recs.append({"id": f"r{i}", "leaf": leaf, "metricfunc": "multichoiceeval", "answer": "A",
                     "response": "<think>" + "reasoning " * rng.randrange(5, 60) + "</think><answer>B</answer>",
                     "score": float(rng.random() < 0.5), "details": {"parsed_pred": "B"},
                     "prompt": "Which object is closer to the camera? " * 3, "images": [rng.choice(images)],
                     "videos": []})
    for k, step in enumerate(range(100, steps + 1, 100)):
        out = run / "eval" / f"step_{step}"
        out.mkdir(parents=True, exist_ok=True)
        agg = aggregate_records(recs, mode="renormalize")
        if k == 9:
            (out / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        atomic_write_json(out / "summary.json", {"format": SUMMARY_FORMAT, "step": step, "mode": "renormalize",
                                                 "overall": agg.overall, "num_samples": len(recs),
                                                 "tree": tree_dict(agg)})
    with open(run / "rollouts.jsonl", "w") as fh:
        for i in range(rollouts):
            fh.write(json.dumps({"step": 10 * (i // 80 + 1), "group": (i % 80) // 8, "level": f"L{i % 4 + 1}",
                                 "leaf": leaves[i % len(leaves)], "answer": "A", "media": [rng.choice(images)],
                                 "prompt": "Which object is closer?", "completion": "<answer>A</answer>" * 3,
                                 "rewards": {"accuracy": 1.0, "format": 1.0}, "reward": 1.1,
                                 "advantage": rng.gauss(0, 1)}) + "\n")
    return run


def run(ctx: Context) -> list[Figure]:
    from eval_hooks.html import write_run_page
    from eval_hooks.html.browser import Browser, find_chromium

    if find_chromium() is None:
        raise RuntimeError("no Chromium (scripts/ensure_browser.sh installs it from Debian's package)")
    run_dir = synthetic_run(ctx.workdir)
    start = time.perf_counter()
    page = write_run_page(run_dir)
    write_s = time.perf_counter() - start
    blank = ctx.workdir / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body><script>document.body.dataset.ready='1'</script></body></html>")
    with Browser() as b:
        ours, base = compare(lambda: b.open(page), lambda: b.open(blank), ctx.repeats, ctx.warmup,
                             progress=ctx.log)
        shown = b.evaluate("document.querySelectorAll('#samples .sample').length")
        b.open(page)
        errors = list(b.errors)
    if errors:
        raise RuntimeError(f"console errors on the page: {errors[:3]}")
    return [pair_figure(
        "open_s", f"seconds from navigation to the page's script done: a run page of {RECORDS} evaluation records "
        f"and {ROLLOUTS} rollouts ({page.stat().st_size / 1e6:.1f} MB)", "s", ours, base, "an empty page",
        better="lower", target=f"ours < {TARGET_S:g} s", check=lambda o, _b, _r: o["median"] < TARGET_S,
        notes="project choice: the page renders the first 100 samples / 30 rollout groups and the rest on demand",
        extra={"page_bytes": page.stat().st_size, "write_page_s": round(write_s, 2), "samples_rendered": shown})]
