"""Data of the quickstart (recipes/sft/quickstart_sft.yaml): an L1 "which object is closer to the camera?"
MCQ drawn large enough for the tiny model's 4 image tokens, written by the engine's own writers.

    python launch/quickstart_data.py DIR [--train 10000] [--heldout 200] [--seed 1]
                                           [--kinds closer[,farther]] [--options-by position|name]

Two objects stand on a ground plane seen in perspective: the closer one is drawn larger and lower (the
monocular cues of size and height in the field of view). Rows are engine ``Item``s written by
``data_mix.engine.writers`` (SpatialTree-Bench records for the held-out set, leaf L1/Geometry/Distance);
the training rows are prompted with the benchmark's own wording, as the held-out records are.

What the tiny model (vision tower frozen at random init) learns, measured (batch 32, lr 1e-3, 300 steps):
- defaults (closer, options "the object on the left / right", 10,000 fresh rows): held-out 0.77 at step
  200 and 1.00 at step 300;
- options naming the objects ("the red box"): stays at chance; it does not learn to bind a colour word
  in the options to its letter within a few hundred steps (docs/ENGINE.md measured the same);
- closer and farther mixed: still at chance at step 300;
- 2,000 rows repeated for 600 steps: memorised (train 1.00, held-out 0.49);
- LLaVA-style prompts for training but the benchmark's prompts for the held-out records: chance.
The engine's own 3-D scenes at 56 px draw objects of a few pixels; see docs/ENGINE.md (option order).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

SIZE = 56
COLORS = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (40, 80, 230), "yellow": (235, 215, 40),
          "purple": (150, 60, 200), "orange": (245, 140, 30)}
SHAPES = ("box", "ball")
KINDS = ("closer", "farther")
DEFAULT_KINDS = ("closer",)


def _draw(img: np.ndarray, shape: str, color: tuple, cx: float, bottom: float, size: float) -> None:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    top = bottom - size
    if shape == "box":
        mask = (np.abs(xx - cx) <= size / 2) & (yy >= top) & (yy <= bottom)
    else:
        r = size / 2
        mask = (xx - cx) ** 2 + (yy - (bottom - r)) ** 2 <= r * r
    img[mask] = color


def make_item(rng: np.random.Generator, kind: str, options_by: str = "position"):
    """One scene and its MCQ as an engine Item (task "distance": leaf L1 / Geometry / Distance)."""
    from data_mix.engine.tasks.base import Item, mcq

    img = np.empty((SIZE, SIZE, 3), dtype=np.uint8)
    img[:] = (200, 200, 205)
    img[SIZE // 3:] = (150, 145, 140)  # ground below a horizon
    names = rng.choice(list(COLORS), size=2, replace=False)
    shapes = rng.choice(SHAPES, size=2)
    near_size = rng.uniform(16, 22)
    far_size = near_size * rng.uniform(0.4, 0.6)
    near_x, far_x = (rng.uniform(12, 24), rng.uniform(34, 46)) if rng.random() < 0.5 else \
        (rng.uniform(32, 44), rng.uniform(10, 22))
    near_bottom, far_bottom = rng.uniform(46, 54), rng.uniform(24, 32)
    _draw(img, shapes[1], COLORS[names[1]], far_x, far_bottom, far_size)  # far first: the near one occludes it
    _draw(img, shapes[0], COLORS[names[0]], near_x, near_bottom, near_size)
    near, far = f"the {names[0]} {shapes[0]}", f"the {names[1]} {shapes[1]}"
    want, other = (near, far) if kind == "closer" else (far, near)
    if options_by == "position":  # fixed options: the answer depends on the image and the question only
        near_left = near_x < far_x
        want_left = near_left if kind == "closer" else not near_left
        options, letter = ["A. the object on the left", "B. the object on the right"], "A" if want_left else "B"
    else:
        options, letter = mcq(rng, want, [other])
    question = "Which object is closer to the camera?" if kind == "closer" else "Which object is farther from the camera?"
    think = f"{near[4:].capitalize()} is drawn larger and lower, so it is nearer. The answer is {letter}."
    return Item("distance", kind, [img], question, letter, "multichoiceeval", options=options, think=think)


def write_split(out: Path, n: int, seed: int, fmt: str, kinds: tuple[str, ...] = DEFAULT_KINDS,
                options_by: str = "position") -> Path:
    """``n`` rows to ``out/distance_llava.jsonl`` (fmt llava) or ``out/distance_bench.jsonl`` (fmt bench)."""
    from data_mix.engine.writers import bench_row, dumps, llava_row, media_files
    from data_mix.readers.bench_prompts import bench_prompt

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    path = out / f"distance_{fmt}.jsonl"
    with open(path, "w") as fh:
        for i in range(n):
            item = make_item(rng, kinds[int(rng.integers(len(kinds)))], options_by)
            sid = f"qs-distance-s{seed}-{i:06d}"
            files, images, video = media_files(item, sid, "images/distance")
            for name, data in files.items():
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                (out / name).write_bytes(data)
            if fmt == "llava":
                row = llava_row(item, sid, images, video)
                # the held-out records are prompted with the benchmark's wording: train with the same words
                row["conversations"][0]["value"] = "<image>\n" + bench_prompt(item.question, item.options,
                                                                                item.metricfunc, "L1")
            else:
                row = bench_row(item, sid, images)
            fh.write(dumps(row) + "\n")
    return path


def make_quickstart_data(root: str | Path, n_train: int = 12800, n_heldout: int = 200, seed: int = 1,
                         kinds: tuple[str, ...] = DEFAULT_KINDS, options_by: str = "position") -> Path:
    """Training rows (seed) and held-out bench records (seed + 1000) under ``root`` as quickstart.yaml expects."""
    root = Path(root)
    write_split(root / "distance_train", n_train, seed, "llava", kinds, options_by)
    write_split(root / "distance_heldout", n_heldout, seed + 1000, "bench", kinds, options_by)
    (root / "quickstart_data.json").write_text(json.dumps({"train": n_train, "heldout": n_heldout, "seed": seed,
                                                           "kinds": list(kinds), "options_by": options_by}))
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch/quickstart_data.py", description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=12800)
    parser.add_argument("--heldout", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--kinds", default=",".join(DEFAULT_KINDS), help="question variants: closer, farther")
    parser.add_argument("--options-by", choices=("name", "position"), default="position",
                        help="options name the objects (colour + shape) or their side (left / right)")
    args = parser.parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if not kinds or set(kinds) - set(KINDS):
        parser.error(f"--kinds must be a comma-separated subset of {','.join(KINDS)}")
    root = make_quickstart_data(args.out, args.train, args.heldout, args.seed, kinds, args.options_by)
    print(f"quickstart data: {args.train} training rows, {args.heldout} held-out records -> {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
