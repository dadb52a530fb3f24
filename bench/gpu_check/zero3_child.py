"""One side of the ZeRO-3 check: the real ``train.sft.run`` on fixed micro-batches of the benchmark corpus.

    torchrun --standalone --nproc_per_node W -m bench.gpu_check.zero3_child OUT CORPUS zero3 W DEVICE
    python -m bench.gpu_check.zero3_child OUT CORPUS none W DEVICE        # the reference: one process
    ... zero3 W DEVICE packed ATTN DTYPE      # packing (train.packing=true) with the given attention and dtype
    ... none W DEVICE padded ATTN DTYPE       # an unpacked reference in that attention and dtype

Rank r trains micro-batch (step s, rank r) = samples [(s W + r) B, (s W + r + 1) B) of the corpus (short MCQ,
long multi-image, a video, a text-only sample: different media and lengths on every rank). The reference runs
the same micro-batches in one process with W per optimizer step (rank 0's, then rank 1's, ...): the same
token-mean loss, so the same weights. The schedule generalises tests/zero3_media_child.py to W ranks.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

STEPS = 2
BATCH = 2


def schedule(samples: list, world: int, rank: int | None) -> list:
    """The samples in training order: one rank's (``rank``) or, for the reference (None), all ranks' per step."""
    def micro(step: int, r: int) -> list:
        first = (step * world + r) * BATCH
        return [samples[(first + i) % len(samples)] for i in range(BATCH)]

    ranks = range(world) if rank is None else [rank]
    return [s for step in range(STEPS) for r in ranks for s in micro(step, r)]


def overrides(out: str, stage: str, world: int, device: str, layout: str = "padded", attn: str = "sdpa",
              dtype: str = "fp32") -> list[str]:
    packed = ["train.packing=true", "train.packing_max_length=4096"] if layout == "packed" else []
    return [*packed, f"train.output_dir={out}", f"train.deepspeed={'null' if stage == 'none' else stage}",
            f"train.max_steps={STEPS}", f"train.per_device_batch_size={BATCH}",
            f"train.grad_accum={world if stage == 'none' else 1}", "train.save_steps=0", "optim.lr=1e-3",
            "optim.warmup_ratio=0", "optim.scheduler=constant", "train.logging_steps=1", "eval.bench=null",
            "data.decontaminate=off",
            "train.report_to=[jsonl]", "train.num_threads=1", "model.freeze.projector=false", f"model.dtype={dtype}",
            f"model.attn_implementation={attn}", f"train.device={device}", "data.max_length=4096"]


def main(out: str, corpus_root: str, stage: str, world: str, device: str, layout: str = "padded",
         attn: str = "sdpa", dtype: str = "fp32") -> int:
    from bench.gpu_check.inputs import extra_samples
    from bench.workload import Corpus, read_samples
    from train.cli import end_process
    from train.data import ListSource
    from train.recipe import load_recipe
    from train.sft import run

    root = Path(corpus_root)
    corpus = Corpus(root=root, registry=root / "registry.yaml", rows={})
    samples = read_samples(corpus) + extra_samples(corpus)
    rank = None if stage == "none" else int(os.environ.get("RANK", 0))
    recipe = load_recipe(None, [*overrides(out, stage, int(world), device, layout, attn, dtype), f"data.root={root}",
                                f"data.registry={corpus.registry}"])
    code = run(recipe, [], source=ListSource(schedule(samples, int(world), rank), epochs=1))
    end_process(code)  # as launch/sft.py does (train/cli.py)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
