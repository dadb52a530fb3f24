"""Shared helpers of the SFT tests: hand-made Samples with real images on disk, the tiny model."""

from __future__ import annotations

from pathlib import Path

from data_mix.sample import Sample

COLORS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 220, 30)}


def write_image(path: Path, color: str, size: int = 56) -> str:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), COLORS[color]).save(path)
    return str(path)


def user(*parts) -> dict:
    content = [{"type": p} if p in ("image", "video") else {"type": "text", "text": p} for p in parts]
    return {"role": "user", "content": content}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def sample_zoo(root: Path) -> dict[str, Sample]:
    """Single image, multi-image (two turns), video (4 frames), text only, and one with a system prompt."""
    img = [write_image(root / f"{c}.png", c) for c in COLORS]
    big = write_image(root / "big.png", "blue", size=112)
    frames = [write_image(root / f"frame{i}.png", c) for i, c in enumerate(COLORS)]
    return {
        "single": Sample(id="single", source="hand", images=[img[0]],
                         messages=[user("image", "What color is it?"), assistant("red")]),
        "multi": Sample(id="multi", source="hand", images=[img[1], big],
                        messages=[user("image", "image", "Which is larger?"), assistant("The second."),
                                  user("And the color of the first?"), assistant("green")]),
        "video": Sample(id="video", source="hand", videos=[frames],
                        messages=[user("video", "How did the camera move?"), assistant("left")]),
        "text": Sample(id="text", source="hand",
                       messages=[user("Is the sphere closer?"), assistant("yes")]),
        "system": Sample(id="system", source="hand", images=[img[3]],
                         messages=[{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
                                   user("image", "Color?"), assistant("yellow")]),
    }
