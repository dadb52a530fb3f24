"""Benchmark: memory and time to first batch of the mixer at 10k / 100k / 1M (/ 10M) manifest rows.

    .venv/bin/python bench/bench_data.py [--rows 10000,100000,1000000] [--batch 32] [--out DIR]

Each size runs in a fresh subprocess (clean peak RSS). For each: a JSONL manifest of LLaVA rows
(all pointing at one 56x56 image) is written once; then the subprocess builds the mix (row-offset
index + plan) and draws the first batch, and reports the time of each step, peak RSS, and the
RSS growth of the mixing itself. The row-offset index is built in a first, uncached run (files
above 32 MB cache it under ~/.cache/spatialtree/index), and a second run shows the cached start.
Not a test: numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def write_manifest(root: Path, rows: int) -> Path:
    from PIL import Image

    img = root / "img.png"
    if not img.exists():
        Image.new("RGB", (56, 56), (200, 30, 30)).save(img)
    path = root / f"manifest_{rows}.jsonl"
    if path.exists():
        return path
    template = ('{"id": %d, "image": "img.png", "conversations": [{"from": "human", "value": "<image>\\n'
                'What color is the square in picture %d?"}, {"from": "gpt", "value": "red"}]}\n')
    with open(path, "w") as fh:
        for start in range(0, rows, 100_000):
            fh.write("".join(template % (i, i) for i in range(start, min(rows, start + 100_000))))
    return path


def child(manifest: str, batch: int, cache: str) -> None:
    """Runs in the subprocess: build the mix and draw one batch; print JSON."""
    sys.path.insert(0, str(REPO))
    t0 = time.perf_counter()
    from data_mix.config import BudgetConfig, DataConfig, GroupConfig, MixConfig
    from data_mix.mixer import build_mix

    t_import = time.perf_counter() - t0
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    root = os.path.dirname(manifest)
    reg = os.path.join(root, f"reg_{os.path.basename(manifest)}.yaml")
    with open(reg, "w") as fh:
        fh.write(f"sources:\n  big:\n    format: llava\n    files: [{manifest}]\n")
    data = DataConfig(root=root, registry=reg, index_cache=cache)
    mix = MixConfig(unit="samples", groups={"g": GroupConfig(sources=["big"])},
                    budget=BudgetConfig(unit="epochs", value=1), seed=0)
    t1, c1 = time.perf_counter(), time.process_time()
    m = build_mix(data, mix)
    t_build = time.perf_counter() - t1
    it = iter(m)
    got = [next(it) for _ in range(batch)]
    t_first, c_first = time.perf_counter() - t1, time.process_time() - c1
    later = [next(it) for _ in range(1000)]
    t_1k = time.perf_counter() - t1 - t_first
    rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": m.total_samples, "import_s": round(t_import, 2), "build_s": round(t_build, 3),
                      "first_batch_s": round(t_first, 3), "first_batch_cpu_s": round(c_first, 4), "next_1000_samples_s": round(t_1k, 3),
                      "peak_rss_mb": round(rss1 / 1024, 1), "mix_rss_growth_mb": round((rss1 - rss0) / 1024, 1),
                      "distinct_rows_in_batch": len({s.row for s in got}), "drawn": len(got) + len(later)}))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", default="10000,100000,1000000")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--out", default=None, help="where manifests are written (default: a temp dir)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--cache", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.batch, args.cache)
        return 0
    root = Path(args.out or tempfile.mkdtemp(prefix="bench_data_"))
    root.mkdir(parents=True, exist_ok=True)
    cache = root / "index_cache"
    print(f"{'rows':>10} {'run':>6} {'MB file':>8} {'build s':>8} {'1st batch s':>11} {'+1000 s':>8} "
          f"{'peak RSS MB':>11} {'mix RSS +MB':>11}")
    for n in (int(x) for x in args.rows.split(",")):
        t = time.perf_counter()
        manifest = write_manifest(root, n)
        write_s = time.perf_counter() - t
        for run in ("cold", "cached"):
            out = subprocess.run([sys.executable, __file__, "--child", str(manifest), "--batch", str(args.batch),
                                  "--cache", str(cache)], capture_output=True, text=True, check=True)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"{n:>10} {run:>6} {manifest.stat().st_size / 2**20:>8.1f} {r['build_s']:>8.3f} "
                  f"{r['first_batch_s']:>11.3f} {r['next_1000_samples_s']:>8.3f} {r['peak_rss_mb']:>11.1f} "
                  f"{r['mix_rss_growth_mb']:>11.1f}", flush=True)
        print(f"{'':>10} (manifest written in {write_s:.1f} s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
