"""Helpers of the sweep / Slurm / report tests, and a stand-in launcher (run this file as a script).

The stand-in takes the launchers' ``key=value`` arguments and behaves like a trainer where the sweep
machinery can see it: it counts steps with a checkpoint after each one, resumes from it with
``train.resume=auto``, checkpoints and exits 0 on SIGUSR1/SIGTERM (as the SFT trainer does), logs
``bench/overall`` to metrics.jsonl, and writes eval/final/summary.json in eval_hooks' format.

Stand-in keys: ``standin.steps`` (default 5), ``standin.step_secs`` (0.02), ``standin.quality``
(leaf scores are quality + a per-leaf offset), ``standin.fail`` (exit 3 instead of finishing),
``standin.fast_file`` (once this file exists, the remaining steps take no time: a test can keep
the run going as long as it needs, then let it finish).
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STANDIN = Path(__file__).resolve()


def leaf_scores(name: str, quality: float) -> dict[str, float]:
    """Deterministic leaf scores (0..1) for a run: ``quality`` plus a per-(run, leaf) offset in [-0.1, 0.1]."""
    from rewards import taxonomy as tx

    out = {}
    for leaf in tx.leaves():
        h = int(hashlib.sha256(f"{name}/{leaf.key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        out[leaf.key] = min(1.0, max(0.0, quality + 0.2 * h - 0.1))
    return out


def write_summary(run_dir: Path, scores: dict[str, float], step: int | str = "final") -> Path:
    """eval/<step>/summary.json in eval_hooks' layout (format, overall, tree)."""
    from eval_hooks.io import atomic_write_json
    from eval_hooks.tree import SUMMARY_FORMAT, tree_dict
    from rewards import taxonomy as tx

    agg = tx.aggregate({k.rsplit("/", 1)[-1]: v for k, v in scores.items()}, mode="renormalize")
    folder = "final" if step == "final" else f"step_{step}"
    summary = {"format": SUMMARY_FORMAT, "step": step, "mode": "renormalize", "overall": agg.overall,
               "num_samples": len(scores), "tree": tree_dict(agg)}
    return atomic_write_json(run_dir / "eval" / folder / "summary.json", summary)


def _parse(argv: list[str]) -> dict[str, str]:
    out = {}
    for arg in argv:
        key, _, value = arg.partition("=")
        out[key] = value
    return out


def main(argv: list[str]) -> int:
    args = _parse(argv)
    run_dir = Path(args["train.output_dir"])
    run_dir.mkdir(parents=True, exist_ok=True)
    name = args.get("name", run_dir.name)
    steps = int(args.get("standin.steps", 5))
    step_secs = float(args.get("standin.step_secs", 0.02))
    quality = float(args.get("standin.quality", 0.5))
    ckpt = run_dir / "standin_ckpt.json"
    start = 0
    if args.get("train.resume") == "auto" and ckpt.exists():
        start = json.loads(ckpt.read_text())["step"]
    with open(run_dir / "attempts.jsonl", "a") as f:
        f.write(json.dumps({"start_step": start, "restart": os.environ.get("SLURM_RESTART_COUNT"),
                            "rank": os.environ.get("RANK"), "world": os.environ.get("WORLD_SIZE"),
                            "master": os.environ.get("MASTER_ADDR"), "args": argv}) + "\n")
    print(f"standin {name}: steps {start}..{steps}", flush=True)
    stop = []
    for sig in (signal.SIGUSR1, signal.SIGTERM):
        signal.signal(sig, lambda s, _f: stop.append(s))
    fast_file = Path(args["standin.fast_file"]) if args.get("standin.fast_file") else None
    for step in range(start + 1, steps + 1):
        if fast_file is None or not fast_file.exists():
            time.sleep(step_secs)
        with open(run_dir / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": step, "bench/overall": quality * step / steps, "train/loss": 1.0 / step})
                    + "\n")
        tmp = ckpt.with_suffix(".tmp")
        tmp.write_text(json.dumps({"step": step}))
        os.replace(tmp, ckpt)
        if stop:
            print(f"standin {name}: signal {stop[0]} at step {step}: checkpoint saved, exiting", flush=True)
            return 0
    if args.get("standin.fail") in ("true", "1"):
        print(f"standin {name}: failing on purpose", flush=True)
        return 3
    write_summary(run_dir, leaf_scores(name, quality))
    print(f"standin {name}: finished {steps} steps", flush=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main(sys.argv[1:]))
