"""The benchmark corpus: a realistic length mix written as LLaVA JSONL + images + a registry.

Two sources, as a VLM SFT mix looks: ``short_mcq`` (one image, a question with four options, a letter as
the answer: ~70% of the rows) and ``long_conv`` (3-6 images of 112-224 px, 2-4 question/answer turns of
a few sentences: ~30%). Row text comes from a seeded generator, so every run measures the same data.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

WORDS = ("the red cube is left of the blue sphere and closer to the camera than the green cone while the "
         "yellow cylinder stands behind the table near the wall so the chair appears smaller because it is "
         "farther away from the viewer in the second image the lamp moved to the right").split()
SIZES = (56, 84, 112, 168, 224)


@dataclass
class Corpus:
    root: Path
    """data.root: images and JSONL files live under it."""
    registry: Path
    """Registry YAML with the two sources."""
    rows: dict[str, list[dict]]
    """The rows written per source (LLaVA format)."""

    def data_config(self, **overrides):
        from data_mix.config import DataConfig

        cfg = DataConfig(root=str(self.root), registry=str(self.registry), max_length=4096)
        for key, value in overrides.items():
            setattr(cfg, key, value)
        return cfg

    def mix_config(self, budget_samples: int | None = None):
        """Samples 7:3 (short : long), the whole corpus once by default."""
        from data_mix.config import BudgetConfig, GroupConfig, MixConfig

        total = sum(len(r) for r in self.rows.values())
        return MixConfig(unit="samples", groups={"short": GroupConfig(weight=7, sources=["short_mcq"]),
                                                 "long": GroupConfig(weight=3, sources=["long_conv"])},
                         budget=BudgetConfig(unit="samples", value=float(budget_samples or total)),
                         upsample=True, seed=0)

    def hf_rows(self) -> list[dict]:
        """The same rows as TRL's conversational VLM format: ``messages`` + ``images`` (paths), in mix order
        7:3 interleaved."""
        out = []
        short, long = self.rows["short_mcq"], self.rows["long_conv"]
        i = j = 0
        while i < len(short) or j < len(long):
            for _ in range(7):
                if i < len(short):
                    out.append(to_messages(short[i], self.root / "images"))
                    i += 1
            for _ in range(3):
                if j < len(long):
                    out.append(to_messages(long[j], self.root / "images"))
                    j += 1
        return out


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(lo, hi))]
    return " ".join(words).capitalize() + "."


def _image_name(rng: random.Random) -> str:
    return f"img_{rng.choice(SIZES)}_{rng.randrange(8)}.png"


def short_row(rng: random.Random, i: int) -> dict:
    options = "\n".join(f"{c}. {_sentence(rng, 2, 5)}" for c in "ABCD")
    question = f"<image>\nWhich object is closer to the camera? {_sentence(rng, 4, 12)}\n{options}"
    return {"id": f"mcq-{i}", "image": _image_name(rng),
            "conversations": [{"from": "human", "value": question}, {"from": "gpt", "value": rng.choice("ABCD")}]}


def long_row(rng: random.Random, i: int) -> dict:
    n_img = rng.randint(3, 6)
    turns = rng.randint(2, 4)
    conv = []
    for t in range(turns):
        tags = "".join("<image>\n" for _ in range(n_img)) if t == 0 else ""
        conv.append({"from": "human", "value": tags + _sentence(rng, 8, 20)})
        conv.append({"from": "gpt", "value": " ".join(_sentence(rng, 10, 25) for _ in range(rng.randint(2, 5)))})
    return {"id": f"conv-{i}", "image": [_image_name(rng) for _ in range(n_img)], "conversations": conv}


def write_images(folder: Path, seed: int = 0) -> None:
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rs = np.random.RandomState(seed)
    for size in SIZES:
        for k in range(8):
            arr = (rs.rand(size, size, 3) * 255).astype("uint8")  # noise: no compression shortcut
            Image.fromarray(arr).save(folder / f"img_{size}_{k}.png")


def build(root: Path, n_rows: int, seed: int = 0) -> Corpus:
    """Write ``n_rows`` rows (70% short MCQ, 30% long multi-image) under ``root``."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    write_images(root / "images", seed)
    n_long = max(1, round(n_rows * 0.3))
    rows = {"short_mcq": [short_row(rng, i) for i in range(n_rows - n_long)],
            "long_conv": [long_row(rng, i) for i in range(n_long)]}
    for name, rs in rows.items():
        (root / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rs))
    registry = root / "registry.yaml"
    registry.write_text(json.dumps({"sources": {
        "short_mcq": {"format": "llava", "files": ["short_mcq.jsonl"], "media_root": "images", "modality": "image",
                      "description": "benchmark: short MCQ, one image"},
        "long_conv": {"format": "llava", "files": ["long_conv.jsonl"], "media_root": "images",
                      "modality": "multi_image", "description": "benchmark: long multi-image conversations"}}}))
    return Corpus(root=root, registry=registry, rows=rows)


def to_messages(row: dict, media_root: Path) -> dict:
    """A LLaVA row as TRL's conversational format: typed content parts, images as absolute paths."""
    messages = []
    for turn in row["conversations"]:
        role = "user" if turn["from"] == "human" else "assistant"
        parts, text = [], turn["value"]
        while "<image>" in text:
            before, text = text.split("<image>", 1)
            if before.strip():
                parts.append({"type": "text", "text": before.strip()})
            parts.append({"type": "image"})
        if text.strip():
            parts.append({"type": "text", "text": text.strip()})
        messages.append({"role": role, "content": parts})
    images = row["image"] if isinstance(row["image"], list) else [row["image"]]
    return {"messages": messages, "images": [str(media_root / p) for p in images]}


def read_samples(corpus: Corpus, data=None) -> list:
    """Every row as a data_mix Sample (through data_mix's own reader), short then long."""
    from data_mix.readers import read_source

    data = data or corpus.data_config()
    return [s for name in ("short_mcq", "long_conv") for s in read_source(name, data)]


# ---------------------------------------------------------------------------- RL prompts (GRPO)

RL_TAGS = {  # level -> (ability, leaf) tags as SpatialTree-Bench spells them, and the metric
    "L1": ("Geometry", "Distance", "multichoiceeval"),
    "L2": ("Memory", "MemoryRetrieval", "multichoiceeval"),
    "L3": ("Seq.Plan.", "Route", "multichoiceeval"),
    "L4": ("Goal-DrivenExecution", "AgenticNavigation", "multichoiceeval"),
}


def build_rl(root: Path, n: int, seed: int = 0) -> Path:
    """``n`` SpatialTree-Bench-format prompts over L1-L4 (MCQ, plus open numeric questions at L1) with 56 px
    images, and ``root/registry.yaml`` naming the source ``rl_bench``. Returns the registry path."""
    rng = random.Random(seed)
    write_images(root / "images", seed)
    rows = []
    for i in range(n):
        level = "L1L2L3L4"[2 * (i % 4):2 * (i % 4) + 2]
        ability, leaf, metric = RL_TAGS[level]
        open_q = level == "L1" and i % 8 == 0
        row = {"question": f"{_sentence(rng, 6, 14)} Which option is right?", "option": [] if open_q else
               [f"{c}. {_sentence(rng, 2, 4)}" for c in "ABCD"], "answer": str(round(rng.uniform(1, 9), 1))
               if open_q else rng.choice("ABCD"), "question_type": "open" if open_q else "mcq", "hint": "{}",
               "extra_info": json.dumps({"metricfunc": metric, "spatree0": level, "spatree1": ability,
                                         "spatree2": leaf}),
               "image": [f"img_56_{rng.randrange(8)}.png"], "video": [], "video_info": [], "session_id": f"rl-{i}"}
        rows.append(row)
    (root / "rl.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    registry = root / "registry.yaml"
    registry.write_text(json.dumps({"sources": {"rl_bench": {
        "format": "bench", "files": ["rl.jsonl"], "media_root": "images", "modality": "image",
        "description": "benchmark: GRPO prompts over L1-L4"}}}))
    return registry
