"""Data of the quickstart (recipes/sft/quickstart_sft.yaml): an L1 "which object is closer / farther" MCQ
drawn large enough for the tiny model's 4 image tokens to see, written by the engine's own writers.

    python -m train.quickstart_data DIR [--train 2000] [--heldout 200] [--seed 1]

Why not the engine's 3-D scenes: at 56x56 their objects cover a few pixels, and the tiny model with a
frozen, randomly initialised vision tower stays at chance on them (measured: 400 steps, closer-only and
closer/farther, 56 and 112 px). Here two flat objects stand on a ground plane seen in perspective: the
closer one is drawn larger and lower (the monocular cues of size and height in the field of view).
Rows are built as engine ``Item``s and written by ``data_mix.engine.writers``, so the LLaVA training rows
and the held-out SpatialTree-Bench records have exactly the engine's formats and prompts.
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


def _draw(img: np.ndarray, shape: str, color: tuple, cx: float, bottom: float, size: float) -> None:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE]
    top = bottom - size
    if shape == "box":
        mask = (np.abs(xx - cx) <= size / 2) & (yy >= top) & (yy <= bottom)
    else:
        r = size / 2
        mask = (xx - cx) ** 2 + (yy - (bottom - r)) ** 2 <= r * r
    img[mask] = color


def make_item(rng: np.random.Generator, kind: str):
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
    options, letter = mcq(rng, want, [other])
    question = "Which object is closer to the camera?" if kind == "closer" else "Which object is farther from the camera?"
    think = f"{near[4:].capitalize()} is drawn larger and lower, so it is nearer. The answer is {letter}."
    return Item("distance", kind, [img], question, letter, "multichoiceeval", options=options, think=think)


def write_split(out: Path, n: int, seed: int, fmt: str) -> Path:
    """``n`` rows to ``out/distance_llava.jsonl`` (fmt llava) or ``out/distance_bench.jsonl`` (fmt bench)."""
    from data_mix.engine.writers import bench_row, dumps, llava_row, media_files

    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    path = out / f"distance_{fmt}.jsonl"
    with open(path, "w") as fh:
        for i in range(n):
            item = make_item(rng, "closer" if rng.random() < 0.5 else "farther")
            sid = f"qs-distance-s{seed}-{i:06d}"
            files, images, video = media_files(item, sid, "images/distance")
            for name, data in files.items():
                (out / name).parent.mkdir(parents=True, exist_ok=True)
                (out / name).write_bytes(data)
            row = llava_row(item, sid, images, video) if fmt == "llava" else bench_row(item, sid, images)
            fh.write(dumps(row) + "\n")
    return path


def make_quickstart_data(root: str | Path, n_train: int = 2000, n_heldout: int = 200, seed: int = 1) -> Path:
    """Training rows (seed) and held-out bench records (seed + 1000) under ``root`` as quickstart.yaml expects."""
    root = Path(root)
    write_split(root / "distance_train", n_train, seed, "llava")
    write_split(root / "distance_heldout", n_heldout, seed + 1000, "bench")
    (root / "quickstart_data.json").write_text(json.dumps({"train": n_train, "heldout": n_heldout, "seed": seed}))
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m train.quickstart_data", description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--heldout", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    root = make_quickstart_data(args.out, args.train, args.heldout, args.seed)
    print(f"quickstart data: {args.train} training rows, {args.heldout} held-out records -> {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
