"""Small data written by the data_mix tests: images, LLaVA / bench / messages rows, and a
stand-in-shaped root for the shipped registry (a few rows per source, not the engine's data)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from PIL import Image

COLORS = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (230, 200, 40)]


def write_image(path: Path, size=(56, 56), color=(200, 50, 50)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, color).save(path)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def llava_row(i: int, image: str | list | None = "img.png", question: str = "What color is the square?",
              answer: str = "red", **extra) -> dict:
    row = {"id": f"r{i}", "conversations": [{"from": "human", "value": f"<image>\n{question}"},
                                             {"from": "gpt", "value": answer}]}
    if image is not None:
        row["image"] = image
    row.update(extra)
    return row


def write_registry(path: Path, sources: dict[str, dict]) -> Path:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"sources": sources}, sort_keys=False))
    return path


def make_standin_like(root: Path, registry_yaml: Path, rows_per_source: dict[str, int] | None = None,
                      default_rows: int = 40, seed: int = 0) -> Path:
    """For every llava/bench source of a registry: rows with 56x56 images (answers of varying
    length so that token counts differ per source) laid out where the registry says."""
    import random

    import yaml

    rng = random.Random(seed)
    reg = yaml.safe_load(registry_yaml.read_text())["sources"]
    for k, c in enumerate(COLORS):
        for sub in {spec.get("media_root", "") for spec in reg.values()}:
            write_image(root / sub / f"img{k}.png", color=c)
    for name, spec in reg.items():
        n = (rows_per_source or {}).get(name, default_rows)
        media = root / spec.get("media_root", "")
        rows = []
        for i in range(n):
            img = f"img{rng.randrange(len(COLORS))}.png"
            words = " ".join(["word"] * rng.randrange(1, 12))
            if spec["format"] == "bench":
                rows.append({"question": f"Which is closer? {words}", "option": ["A. red", "B. blue"],
                             "answer": "A", "question_type": "mcq", "hint": "",
                             "extra_info": json.dumps({"metricfunc": "multichoiceeval", "spatree0": "L1",
                                                       "spatree1": "Geometry", "spatree2": "Distance"}),
                             "image": [img], "video": [], "session_id": f"{name}-{i}"})
            elif spec.get("modality") == "video":
                folder = media / f"clip{i % 3}"
                if not folder.exists():
                    for f in range(6):
                        write_image(folder / f"frame_{f:03d}.png", color=COLORS[f % 4])
                rows.append({"id": f"{name}-{i}", "video": f"clip{i % 3}", "conversations": [
                    {"from": "human", "value": f"<video>\nDescribe the clip. {words}"},
                    {"from": "gpt", "value": f"Shapes move. {words}"}]})
            elif spec.get("modality") in ("multi_image", "3d"):
                rows.append({"id": f"{name}-{i}", "image": [img, "img1.png"], "conversations": [
                    {"from": "human", "value": f"First <image> then <image>. Same color? {words}"},
                    {"from": "gpt", "value": f"No. {words}"}]})
            else:
                rows.append(llava_row(i, img, f"What color? {words}", f"It is red {words}", id=f"{name}-{i}"))
        for f in spec["files"]:
            write_jsonl(root / f, rows)
    return root


def data_config(root: Path | str, **kw):
    from data_mix.config import DataConfig

    cfg = DataConfig(root=str(root))
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def env_root() -> str:
    return os.environ.get("SPATIALTREE_STANDIN", "")
