"""The run and sweep pages (eval_hooks/html) of a real tiny run, in a real browser (headless Chromium over the
DevTools protocol).

One GRPO run of the tiny model (2 steps, eval hook at the end on a hand-made bench with images, report_to jsonl +
wandb offline) writes metrics.jsonl, eval/step_2/, rollouts.jsonl and report.html itself; a sweep directory puts
it beside two stand-in rows. Chromium is installed by scripts/ensure_browser.sh (make test runs it).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fixtures_eval import write_hand_bench
from fixtures_grpo import grpo_recipe, write_bench_source

from eval_hooks.html.browser import Browser, find_chromium

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("run", "curves", "tree", "samples", "rollouts")


def _browser_or_skip() -> None:
    if find_chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing on CI: scripts/ensure_browser.sh should have installed it")
        pytest.skip("no Chromium: run scripts/ensure_browser.sh (apt-get install chromium) to run the browser tests")


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory) -> Path:
    import torch

    from train.grpo.trl_backend import run_trl

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("html_run")
    source = write_bench_source(root / "data", n=4, levels=["L1", "L1", "L3", "L3"], images_per_row=[1, 1, 1, 1])
    bench = write_hand_bench(root / "bench", copies=2)
    out = root / "run"
    recipe = grpo_recipe(root / "data", source, [
        f"train.output_dir={out}", "train.max_steps=2", "train.per_device_batch_size=4", "grpo.num_generations=2",
        "grpo.max_completion_length=8", "train.logging_steps=1", "train.num_threads=1", "train.save_steps=0",
        f"eval.bench={bench}", "eval.max_samples_per_leaf=2", "eval.max_new_tokens=8", "eval.at_start=false",
        "eval.at_end=true", "eval.every_steps=0", "train.report_to=[jsonl,wandb]"])
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert run_trl(recipe, []) == 0
    finally:
        import wandb

        if wandb.run is not None:
            wandb.finish()
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return out


def test_grpo_run_writes_rollouts_and_its_page(grpo_run):
    from rewards.grpo import reward_weights
    from train.recipe import load_recipe

    reward_cfg = load_recipe(None).reward  # the run's reward section (grpo_recipe leaves it at its defaults)
    # make_reward_funcs' four components, in its order
    weights = dict(zip(("accuracy", "format", "length", "reasoning"), reward_weights(reward_cfg)))
    rows = [json.loads(x) for x in (grpo_run / "rollouts.jsonl").read_text().splitlines()]
    assert rows and {r["step"] for r in rows} == {1}  # the first step, then every 10th: none more in 2 steps
    assert len(rows) == 4  # one generation batch: 4 completions (2 prompts x 2 generations)
    for r in rows:
        assert set(r["rewards"]) == set(weights)
        assert r["reward"] == pytest.approx(sum(w * r["rewards"][k] for k, w in weights.items()))
        assert r["level"] in ("L1", "L3") and r["media"] and Path(r["media"][0]).is_file()
        assert isinstance(r["advantage"], float) and r["completion"] is not None
    # a group's advantages are its rewards minus the group mean (scaled): they sum to ~0 within each group
    for g in {r["group"] for r in rows}:
        assert abs(sum(r["advantage"] for r in rows if r["group"] == g)) < 1e-4
    page = grpo_run / "report.html"
    assert page.is_file()
    html = page.read_text()
    for sid in SECTIONS:
        assert f'<section id="{sid}">' in html
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html  # nothing fetched
    thumbs = list((grpo_run / "report_files").glob("*.jpg"))
    assert thumbs, "sample thumbnails are written beside the page"


def test_wandb_offline_run_holds_the_rollout_and_sample_tables(grpo_run):
    tables = [p.name for p in grpo_run.glob("wandb/offline-run-*/files/media/table/**/*.table.json")]
    assert any(n.startswith("rollouts_") for n in tables), tables
    assert any(n.startswith("bench/samples_") or "samples" in n for n in tables), tables
    rollout = next(grpo_run.glob("wandb/offline-run-*/files/media/table/rollouts_*.table.json"))
    data = json.loads(rollout.read_text())
    assert {"advantage", "completion", "image", "level"} <= set(data["columns"]) and len(data["data"]) == 4
    assert all(row[data["columns"].index("image")] == "Image" for row in data["data"])  # an image per row
    records = next(grpo_run.glob("wandb/offline-run-*/run-*.wandb")).read_bytes()
    assert records.count(b"media/images/") >= 4  # the offline run logged the image files with the tables


def test_page_of_a_killed_run_tolerates_a_cut_metrics_line(grpo_run, tmp_path):
    import shutil

    killed = tmp_path / "killed"
    shutil.copytree(grpo_run, killed, ignore=shutil.ignore_patterns("wandb", "*.safetensors", "report*"))
    (killed / "train_summary.json").unlink()
    with open(killed / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 3, "train/loss": 0.')  # the process died mid-line
    proc = subprocess.run([sys.executable, "launch/report.py", str(killed)], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    html = (killed / "report.html").read_text()
    assert "not a JSON object" in html and "still running, killed or pre-empted" in html


@pytest.fixture(scope="module")
def sweep_dir(grpo_run, tmp_path_factory) -> Path:
    """A sweep of three rows: two stand-in runs (summaries in eval_hooks' layout) and the real GRPO run."""
    from fixtures_sweep import leaf_scores, write_summary

    sweep = tmp_path_factory.mktemp("sweep")
    runs = {}
    for name, q in (("base", 0.3), ("better", 0.5)):
        d = sweep / "runs" / name
        write_summary(d, leaf_scores(name, q))
        (d / "metrics.jsonl").write_text("".join(json.dumps({"step": s, "bench/overall": q * s / 3}) + "\n"
                                                 for s in (1, 2, 3)))
        runs[name] = {"dir": str(d), "label": name}
    runs["grpo"] = {"dir": str(grpo_run), "label": "tiny GRPO"}
    (sweep / "sweep.json").write_text(json.dumps({"runs": runs, "order": ["base", "better", "grpo"],
                                                  "baseline": "base"}))
    proc = subprocess.run([sys.executable, "launch/report.py", str(sweep)], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return sweep


def test_sweep_page_links_rows_and_keeps_the_tables_and_pngs(sweep_dir):
    html = (sweep_dir / "report.html").read_text()
    for name in ("table.md", "table.csv", "deltas_heatmap.png", "learning_curves.png"):
        assert (sweep_dir / "report" / name).is_file(), name
    assert 'id="sweep-table"' in html and 'id="delta-heatmap"' in html
    assert 'href="runs/base/report.html"' in html and (sweep_dir / "runs" / "base" / "report.html").is_file()
    # every summary.json node carries its 95% interval (eval_hooks/intervals.py): each score cell shows it
    assert "No interval" not in html and re.search(r'<div class="muted">\[\d+\.\d, \d+\.\d\]</div>', html)


def _pathname(browser) -> str:
    """The page's path, or "" while a navigation has no document to ask yet."""
    try:
        return str(browser.evaluate("location.pathname"))
    except Exception:  # noqa: BLE001 -- the old document is gone and the new one not there yet
        return ""


def _pixel_std(png: bytes) -> float:
    import numpy as np
    from PIL import Image

    return float(np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=float).std())


def test_run_and_sweep_pages_in_a_real_browser(grpo_run, sweep_dir, tmp_path):
    _browser_or_skip()
    with Browser() as b:
        b.open(grpo_run / "report.html")
        for sid in SECTIONS:
            assert b.evaluate(f"!!document.getElementById('{sid}')"), sid
        assert b.evaluate("document.querySelectorAll('#curves svg.chart').length") >= 4
        assert b.evaluate("document.querySelectorAll('#tree details').length") >= 5
        assert b.evaluate("document.querySelectorAll('#rollouts .group').length") == 2
        before = b.evaluate("document.querySelectorAll('#samples .sample').length")
        b.click("#samples [data-filter='level=L3']")
        after = b.evaluate("document.querySelectorAll('#samples .sample').length")
        assert before == 8 and after == 2, (before, after)  # hand bench: 4 leaves x 2 records, one leaf in L3
        loaded = ("(function(){var im=document.querySelectorAll('#samples .sample img');return im.length>0&&"
                  "Array.prototype.every.call(im,function(i){return i.complete&&i.naturalWidth>0;});})()")
        deadline = time.monotonic() + 10
        while not b.evaluate(loaded) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert b.evaluate(loaded), "every thumbnail beside the page loads"
        png = b.screenshot()
        (tmp_path / "run.png").write_bytes(png)
        assert _pixel_std(png) > 10, "the screenshot is blank"
        b.open(sweep_dir / "report.html")
        assert b.evaluate("document.querySelectorAll('#sweep-table tr[data-run]').length") == 3
        assert b.evaluate("document.querySelectorAll('#figures img').length") >= 2
        assert _pixel_std(b.screenshot()) > 10
        b.click("#sweep-table tr[data-run='grpo'] a")
        deadline = time.monotonic() + 15  # a load event still queued from the sweep page may come first: poll
        while not _pathname(b).endswith("/run/report.html") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _pathname(b).endswith("/run/report.html")
        assert not b.errors, b.errors
