"""torchrun child of tests/test_sft_dist.py: an SFT run whose two ranks see different media in every
micro-batch, through the real ``train.sft.run`` (DeepSpeed on CPU, gloo).

    torchrun --nproc_per_node 2 tests/zero3_media_child.py OUT ZOO_DIR zero2|zero3 [packed] [MODEL]
    python tests/zero3_media_child.py OUT ZOO_DIR none [MODEL]     # the reference: one process, no DeepSpeed
    torchrun --nproc_per_node 2 tests/zero3_media_child.py OUT ZOO_DIR zero3 packed

``packed``: packing on the flash-attention code path (train/flash_standin.py), with train.packing_max_length=95
so that every micro-batch's two samples take two bins, flattened into one row: the path a GPU run with
flash-attn takes; it must train like the padded reference.
MODEL: a tiny model name (default tiny-qwen2.5-vl; tests/test_families_dist.py runs other families); several
(``tiny-a,tiny-b``) run one after the other in the same processes, each in OUT/<model>/.
``eps=<v>``: AdamW's epsilon (``optim.eps``; default the recipe's 1e-8).

Micro-batches (2 samples each, 2 per optimizer step, 2 steps), rank 0 vs rank 1:
text vs image+video, image vs text, video vs image, image+video vs video. The reference runs the same
micro-batches in one process with 4 per optimizer step (rank 0's two, then rank 1's two): the same
token-mean loss, so the same weights.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fixtures_sft import assistant, sample_zoo, user  # noqa: E402

from data_mix.sample import Sample  # noqa: E402
from train.data import ListSource  # noqa: E402

SCHEDULE = {  # per rank: the samples of each micro-batch, in order
    0: [("text", "text"), ("single", "single"), ("video", "video"), ("single", "video")],
    1: [("both", "both"), ("text", "text"), ("single", "multi"), ("video", "video")],
}


def samples(zoo_dir: Path) -> dict[str, Sample]:
    zoo = sample_zoo(zoo_dir)
    both = Sample(id="both", source="hand", images=zoo["single"].images, videos=zoo["video"].videos,
                  messages=[user("image", "video", "Same color in both?"), assistant("no")])
    return {**zoo, "both": both}


PACKED = ["train.packing=true", "train.packing_max_length=95", "model.attn_implementation=flash_varlen_standin"]


def train_stage(out: Path, zoo: dict[str, Sample], stage: str, packed: bool, model: str, extra=()) -> int:
    from train.recipe import load_recipe
    from train.sft import run

    rank = int(os.environ.get("RANK", 0))
    if stage == "none":
        batches = [b for step in (0, 2) for r in (0, 1) for b in SCHEDULE[r][step:step + 2]]
    else:
        batches = SCHEDULE[rank]
    ordered = [zoo[name] for batch in batches for name in batch]
    accum = 4 if stage == "none" else 2
    recipe = load_recipe(None, [f"model.name_or_path={model}", f"train.output_dir={out}", f"train.deepspeed={'null' if stage == 'none' else stage}",
                                "train.max_steps=2", "train.per_device_batch_size=2", f"train.grad_accum={accum}",
                                "train.save_steps=0",
                                "optim.lr=1e-3", "optim.warmup_ratio=0", "train.logging_steps=1",
                                "eval.bench=null", "data.decontaminate=off", "train.report_to=[jsonl]", "train.num_threads=1",
                                "model.freeze.projector=false", *(PACKED if packed else []), *extra])
    return run(recipe, [], source=ListSource(ordered, epochs=1))


def main(out: str, zoo_dir: str, stage: str, *extra: str) -> int:
    """``stage`` may list several stages (``zero2,zero3``): they run one after the other in the same processes
    (OUT/<stage>), which saves a second torchrun start-up; so may the model (OUT/<model>/<stage>). ``extra``:
    ``packed``, tiny model name(s) and/or ``eps=<v>``."""
    packed = "packed" in extra
    overrides = [f"optim.{e}" for e in extra if e.startswith("eps=")]
    named = next((e for e in extra if e not in ("packed", "padded") and not e.startswith("eps=")), "tiny-qwen2.5-vl")
    models = named.split(",")
    from train.cli import end_process

    rank = int(os.environ.get("RANK", 0))
    zoo = samples(Path(zoo_dir) / f"rank{rank}")
    stages = stage.split(",")
    code = 0
    for model in models:
        base = Path(out) / model if len(models) > 1 else Path(out)
        for name in stages:
            code = code or train_stage(base / name if len(stages) > 1 else base, zoo, name, packed, model, overrides)
    end_process(code)  # as launch/sft.py does (train/cli.py)
    return code


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
