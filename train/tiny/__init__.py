"""The embedded tiny models, one per family: random weights, a tokenizer built here, the family's real
processor, written as a plain Hugging Face directory and loaded through ``from_pretrained`` exactly like a hub
checkpoint. ``model.name_or_path=tiny-qwen3-vl`` (any name of :data:`BUILDERS`) builds it on first use.

    python launch/tiny_model.py --out DIR [--name tiny-qwen3-vl]    # write a tiny model to DIR

Adding a family's tiny model: a module ``train/tiny/<family>.py`` with ``NAME``, ``VERSION`` and
``build(seed) -> (model, processor)``, and one line in :data:`BUILDERS`.
"""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path

BUILDERS: dict[str, str] = {
    "tiny-qwen2-vl": "train.tiny.qwen2_vl",
    "tiny-qwen2.5-vl": "train.tiny.qwen2_5_vl",
    "tiny-qwen3-vl": "train.tiny.qwen3_vl",
    "tiny-qwen3-vl-moe": "train.tiny.qwen3_vl_moe",
    "tiny-qwen3.5": "train.tiny.qwen3_5",
    "tiny-qwen3.5-moe": "train.tiny.qwen3_5_moe",
    "tiny-internvl": "train.tiny.internvl",
}
"""Tiny model name -> its builder module."""

TINY_NAME = "tiny-qwen2.5-vl"
"""The default model of every recipe (the paper's family)."""


def builder(name: str):
    if name not in BUILDERS:
        raise ValueError(f"unknown tiny model {name!r}; known: {', '.join(sorted(BUILDERS))}")
    return importlib.import_module(BUILDERS[name])


def cache_dir() -> Path:
    """Where built models are cached: ``$SPATIALTREE_CACHE`` or ~/.cache/spatialtree."""
    return Path(os.environ.get("SPATIALTREE_CACHE", Path.home() / ".cache" / "spatialtree"))


def write_tiny(out: str | Path, seed: int = 0, name: str = TINY_NAME) -> Path:
    """Write the tiny model ``name`` (model, tokenizer, processor) to ``out`` as a plain HF directory."""
    from train.tiny.common import write_model_dir

    mod = builder(name)
    model, processor = mod.build(seed=seed)
    return write_model_dir(out, model, processor, {"name": mod.NAME, "version": mod.VERSION, "seed": seed})


def source_hash(name: str) -> str:
    """8 hex digits of the builder's source and the shared tiny modules: a changed builder never reuses a
    stale cached model (the cache directory is shared by every checkout on the machine)."""
    import hashlib

    mod = builder(name)
    digest = hashlib.sha256()
    for path in sorted({Path(mod.__file__), *Path(__file__).parent.glob("*.py")}):
        if path.name != "__init__.py" or path == Path(mod.__file__):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:8]


def ensure_tiny(seed: int = 0, name: str = TINY_NAME) -> Path:
    """The cached directory of the tiny model ``name``, built on first use."""
    mod = builder(name)
    path = cache_dir() / f"{mod.NAME}-v{mod.VERSION}-{source_hash(name)}-seed{seed}"
    if not (path / "tiny_model.json").is_file():
        write_tiny(path, seed=seed, name=name)
    return path


def is_tiny(name_or_path: str) -> bool:
    return name_or_path in BUILDERS


def resolve_tiny(name_or_path: str) -> str:
    """A tiny model name -> its cached directory (built on first use); anything else unchanged."""
    return str(ensure_tiny(name=name_or_path)) if is_tiny(name_or_path) else name_or_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="launch/tiny_model.py", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="directory to write the model to")
    parser.add_argument("--name", default=TINY_NAME, choices=sorted(BUILDERS), help="which tiny model")
    parser.add_argument("--seed", type=int, default=0, help="weight-init seed")
    args = parser.parse_args(argv)
    path = write_tiny(args.out, seed=args.seed, name=args.name)
    print(f"wrote {args.name} to {path}")
    return 0
