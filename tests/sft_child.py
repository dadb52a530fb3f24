"""A small SFT run on hand-made samples, in-process (``train_zoo``) or as a child process (``main``).

Used by the resume / pre-emption / disk-full tests. ``--sleep`` slows the data so a signal can land
mid-training; ``--crash-publishing STEP`` SIGKILLs the process itself while checkpoint STEP is being
published (after its files moved into place, before its COMPLETE marker): a crash mid-save.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixtures_sft import sample_zoo  # noqa: E402

from train.data import ListSource  # noqa: E402

BASE = ["train.max_steps=8", "train.save_steps=2", "train.save_total_limit=0", "train.per_device_batch_size=2",
        "optim.lr=1e-3", "optim.warmup_ratio=0.25", "train.logging_steps=1", "eval.bench=null", "data.decontaminate=off",
        "train.report_to=[jsonl]", "train.num_threads=1"]


class SlowSource(ListSource):
    def __init__(self, samples, epochs, sleep):
        super().__init__(samples, epochs)
        self.sleep = sleep

    def __iter__(self):
        for sample in super().__iter__():
            time.sleep(self.sleep)
            yield sample


def train_zoo(out: str | Path, zoo_dir: str | Path, overrides: list[str] = (), sleep: float = 0.0) -> int:
    from train.recipe import load_recipe
    from train.sft import run

    recipe = load_recipe(None, [*BASE, f"train.output_dir={out}", *overrides])
    samples = list(sample_zoo(Path(zoo_dir)).values())
    return run(recipe, [], source=SlowSource(samples, epochs=20, sleep=sleep))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("zoo")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--crash-publishing", type=int, default=None)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_intermixed_args()
    if args.crash_publishing is not None:
        from train import checkpoint

        real = checkpoint.atomic_write_json

        def crashing(path, data):
            if path.name == checkpoint.MARKER and data.get("step") == args.crash_publishing:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(path, data)

        checkpoint.atomic_write_json = crashing
    return train_zoo(args.out, args.zoo, args.overrides, args.sleep)


if __name__ == "__main__":
    sys.exit(main())
