"""Shared by the reliability tests: a small on-disk LLaVA corpus (good rows, and bad rows of every kind),
its registry, the overrides of a tiny SFT run, and a helper that runs ``launch/sft.py`` as a subprocess."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
LAUNCH_SFT = REPO / "launch" / "sft.py"
COLORS = [(220, 40, 40), (40, 160, 60), (40, 80, 220), (230, 200, 40)]


def write_jsonl(path: Path, rows: list) -> Path:
    """Rows as JSON lines; a ``str`` row is written as it is (a malformed line)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def good_rows(n: int, prefix: str = "good") -> list[dict]:
    """``n`` one-image colour questions over img0..img3.png (56x56)."""
    names = ["red", "green", "blue", "yellow"]
    return [{"id": f"{prefix}-{i}", "image": f"img{i % 4}.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat color is the square?"},
        {"from": "gpt", "value": f"It is {names[i % 4]}."}]} for i in range(n)]


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels and that has no pixel data: opening it is
    enough for PIL to apply its decompression-bomb limit, without a gigabyte on disk or in memory."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b"")


def write_media(media: Path) -> None:
    """Good images plus one bad file of each kind, and a big-but-legal photo (must be downscaled, not skipped)."""
    media.mkdir(parents=True, exist_ok=True)
    for k, color in enumerate(COLORS):
        Image.new("RGB", (56, 56), color).save(media / f"img{k}.png")
    full = (media / "img0.png").read_bytes()
    Image.new("RGB", (400, 300), (200, 30, 30)).save(media / "photo.png")
    (media / "truncated.png").write_bytes((media / "photo.png").read_bytes()[:200])  # header fine, pixels cut
    (media / "empty.png").write_bytes(b"")
    (media / "not_an_image.png").write_text("this is text, not a PNG")
    (media / "bomb.png").write_bytes(png_header_only(30_000, 30_000))  # 900 Mpx: over PIL's limit
    assert len(full) > 0
    # A big, legal image: 3000 x 2000 (6 Mpx, under PIL's limit), downscaled to data.image_max_pixels on load.
    Image.new("RGB", (3000, 2000), (40, 80, 220)).save(media / "big_photo.jpg", quality=80)


# One bad row of each kind: (row, reason the data layer gives it).
def bad_rows() -> list[tuple[object, str]]:
    q = [{"from": "human", "value": "<image>\nWhat color is the square?"}, {"from": "gpt", "value": "red"}]
    return [
        ({"id": "missing", "image": "nowhere.png", "conversations": q}, "missing_media"),
        ({"id": "truncated", "image": "truncated.png", "conversations": q}, "truncated_image"),
        ({"id": "zero-byte", "image": "empty.png", "conversations": q}, "empty_media_file"),
        ({"id": "not-image", "image": "not_an_image.png", "conversations": q}, "unreadable_image"),
        ({"id": "bomb", "image": "bomb.png", "conversations": q}, "image_too_large"),
        ({"id": "two-tags", "image": "img1.png", "conversations": [
            {"from": "human", "value": "<image> and <image>: same?"}, {"from": "gpt", "value": "yes"}]},
         "placeholder_mismatch"),
        ({"id": "empty-answer", "image": "img2.png", "conversations": [
            {"from": "human", "value": "<image>\nColor?"}, {"from": "gpt", "value": "   "}]}, "empty_assistant_turn"),
        ('{"id": "broken", "image": "img3.png", "conversations": [', "malformed_json"),
        ({"id": "too-long", "image": "img0.png", "conversations": [
            {"from": "human", "value": "<image>\n" + "describe the scene in detail " * 400},
            {"from": "gpt", "value": "red"}]}, "too_long"),
    ]


def write_corpus(root: Path, n_good: int = 24, bad: list | None = None, big_legal: bool = False) -> Path:
    """``root/train.jsonl`` (good rows with ``bad`` rows spread among them) + media + ``root/registry.yaml``.
    Returns the registry path. The bad rows sit at file rows 3, 6, 9, ... (0-based 2, 5, 8, ...)."""
    write_media(root / "media")
    good = good_rows(n_good)
    if big_legal:
        good[1] = {**good[1], "id": "big-photo", "image": "big_photo.jpg"}
    rows: list = []
    bad = list(bad or [])
    for row in good:
        rows.append(row)
        if bad and len(rows) % 3 == 2:
            rows.append(bad.pop(0))
    rows += bad
    write_jsonl(root / "train.jsonl", rows)
    registry = root / "registry.yaml"
    registry.write_text(json.dumps({"sources": {"rel_train": {
        "format": "llava", "files": ["train.jsonl"], "media_root": "media", "modality": "image",
        "description": "reliability tests"}}}))
    return registry


def sft_overrides(root: Path, registry: Path, out: Path, *extra: str) -> list[str]:
    """A tiny SFT run over ``root``'s corpus: 8 steps of 2 samples, a checkpoint every 2 steps."""
    return [f"data.root={root}", f"data.registry={registry}", "data.max_length=512",
            "mix.groups.all.sources=[rel_train]", "mix.budget.unit=epochs", "mix.budget.value=3", "mix.upsample=true",
            "train.max_steps=8", "train.save_steps=2", "train.save_total_limit=0", "train.per_device_batch_size=2",
            "optim.lr=1e-3", "optim.warmup_ratio=0.25", "train.logging_steps=1", "train.report_to=[jsonl]",
            "train.num_threads=1", "eval.bench=null", "data.decontaminate=off", f"train.output_dir={out}", *extra]


def child_env(extra_pythonpath: Path | None = None) -> dict:
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
               HF_HUB_OFFLINE="1", WANDB_MODE="offline", TRANSFORMERS_VERBOSITY="error")
    if extra_pythonpath is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_pythonpath), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def launch_sft(args: list[str], log: Path, extra_pythonpath: Path | None = None, wait: bool = True,
               timeout: float = 300):
    """Run ``python launch/sft.py ARGS`` with output to ``log``; the CompletedProcess-like Popen when ``wait``
    is False."""
    cmd = [sys.executable, str(LAUNCH_SFT), *args]
    fh = open(log, "w")
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=child_env(extra_pythonpath))
    if not wait:
        return proc
    try:
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
        fh.close()
    return proc


# ---------------------------------------------------------------------------- the child process

CHILD = Path(__file__).resolve()


def launch_child(args: list[str], log: Path, *, slow_publish: str | None = None, batch_sleep: float = 0.0):
    """Start ``launch/sft.py ARGS`` (not waiting) through this file's child mode, which can slow the run down
    so that a signal lands where the test wants it:

    - ``slow_publish="STEP:SECONDS:SENTINEL"``: when checkpoint-STEP is about to be published (all its files
      written in the staging directory, not yet renamed into place), create the file SENTINEL and sleep;
    - ``batch_sleep``: sleep that long while collating each micro-batch (a slower training loop).
    Nothing else changes: the run is launch/sft.py's, executed with runpy as ``__main__``."""
    cmd = [sys.executable, str(CHILD), "--batch-sleep", str(batch_sleep)]
    if slow_publish:
        cmd += ["--slow-publish", slow_publish]
    fh = open(log, "w")
    return subprocess.Popen([*cmd, "--", *args], cwd=REPO, stdout=fh, stderr=subprocess.STDOUT, env=child_env())


def _install_hooks(slow_publish: str | None, batch_sleep: float) -> None:
    import time

    if slow_publish:
        from train import checkpoint

        step, seconds, sentinel = slow_publish.split(":", 2)
        real = checkpoint.fsync_tree

        def slow_fsync_tree(root):
            if Path(root).name == f"checkpoint-{step}" and Path(root).parent.name == checkpoint.STAGING:
                Path(sentinel).write_text(str(root))
                time.sleep(float(seconds))
            return real(root)

        checkpoint.fsync_tree = slow_fsync_tree
    if batch_sleep > 0:
        from train.data import BatchStream

        real_collate = BatchStream.collate

        def slow_collate(self, encoded):
            time.sleep(batch_sleep)
            return real_collate(self, encoded)

        BatchStream.collate = slow_collate


def _child_main(argv: list[str]) -> None:
    import argparse
    import runpy

    p = argparse.ArgumentParser()
    p.add_argument("--slow-publish", default=None)
    p.add_argument("--batch-sleep", type=float, default=0.0)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    rest = a.rest[1:] if a.rest[:1] == ["--"] else a.rest
    sys.path.insert(0, str(REPO))
    _install_hooks(a.slow_publish, a.batch_sleep)
    sys.argv = [str(LAUNCH_SFT), *rest]
    runpy.run_path(str(LAUNCH_SFT), run_name="__main__")


if __name__ == "__main__":
    _child_main(sys.argv[1:])
