"""The embedded tiny models, one per family: random weights, a tokenizer built here, the family's real
processor, written as a plain Hugging Face directory and loaded through ``from_pretrained`` exactly like a hub
checkpoint. ``model.name_or_path=tiny-qwen3-vl`` (any name of :data:`BUILDERS`) builds it on first use.

    python launch/tiny_model.py --out DIR [--name tiny-qwen3-vl]    # write a tiny model to DIR

Adding a family's tiny model: a module ``train/tiny/<family>.py`` with ``NAME``, ``VERSION`` and
``build(seed) -> (model, processor)``, and one line in :data:`BUILDERS`.

The cache (``~/.cache/spatialtree``, shared by every checkout) is keyed by a hash of this package's modules as
the process imported them: they are compiled from the very bytes that are hashed (:class:`_RecordingLoader`), so
a process started before someone edited a builder stores its output under its own code's key, never under the
edited code's. Directories are written to a temporary sibling and renamed into place.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.machinery
import os
import sys
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


CACHE_KEY_SCHEME = b"tiny-cache-key/3\0"
"""Part of every cache key: keys of scheme 1 hashed the builder files as they were on disk when the key was
computed, not the code the process had imported (a process that imported a builder before someone edited it
stored the old code's output under the new code's key); under scheme 2 a first use inside a ZeRO-3 process
saved empty tensors (:func:`train.tiny.common.outside_zero3`). No directory of an older scheme is reused."""

LOADED_SOURCE: dict[str, tuple[str, bytes]] = globals().get("LOADED_SOURCE", {})  # kept across a reload
"""Module name -> (file, source bytes) of every ``train.tiny`` submodule this process imported: exactly the bytes
its code was compiled from."""


class _RecordingLoader(importlib.machinery.SourceFileLoader):
    """Compiles a ``train.tiny`` submodule from source bytes read once and kept in :data:`LOADED_SOURCE`
    (no bytecode cache: the cache key must hash the code that runs, not a file that may have changed since)."""

    def get_code(self, fullname):
        path = self.get_filename(fullname)
        data = self.get_data(path)
        LOADED_SOURCE[fullname] = (path, data)
        return self.source_to_code(data, path)


class _RecordingFinder:
    """Meta-path finder that gives ``train.tiny``'s submodules a :class:`_RecordingLoader`."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(__name__ + "."):
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path or __path__)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _RecordingLoader(fullname, spec.origin)
        return spec


if not any(type(f).__name__ == "_RecordingFinder" for f in sys.meta_path):
    sys.meta_path.insert(0, _RecordingFinder())


def builder(name: str):
    if name not in BUILDERS:
        raise ValueError(f"unknown tiny model {name!r}; known: {', '.join(sorted(BUILDERS))}")
    return importlib.import_module(BUILDERS[name])


def cache_dir() -> Path:
    """Where built models are cached: ``$SPATIALTREE_CACHE`` or ~/.cache/spatialtree."""
    return Path(os.environ.get("SPATIALTREE_CACHE", Path.home() / ".cache" / "spatialtree"))


def _build(mod, seed: int):
    """``mod.build(seed)`` with ZeRO-3 switched off for transformers (:func:`train.tiny.common.outside_zero3`)."""
    from train.tiny.common import outside_zero3

    with outside_zero3():
        return mod.build(seed=seed)


def write_tiny(out: str | Path, seed: int = 0, name: str = TINY_NAME) -> Path:
    """Write the tiny model ``name`` (model, tokenizer, processor) to ``out`` as a plain HF directory."""
    from train.tiny.common import write_model_dir

    mod = builder(name)
    model, processor = _build(mod, seed)
    return write_model_dir(out, model, processor, {"name": mod.NAME, "version": mod.VERSION, "seed": seed})


def builder_modules() -> list[str]:
    """Every module of this package a build may run (all of them but ``__init__`` and ``__main__``)."""
    return sorted(f"{__name__}.{p.stem}" for p in Path(__file__).parent.glob("*.py")
                  if p.stem not in ("__init__", "__main__"))


def loaded_source(module: str) -> bytes:
    """The source bytes ``module`` (a ``train.tiny`` submodule) was compiled from in this process, importing it
    first if need be."""
    if module not in LOADED_SOURCE:
        if module in sys.modules:
            raise RuntimeError(f"{module} was imported without train.tiny's recording loader: its source is unknown")
        importlib.import_module(module)
    return LOADED_SOURCE[module][1]


def source_hash(name: str) -> str:
    """8 hex digits of the source of every builder module *as this process imported it* (not as the files are
    now): a changed builder never reuses a stale cached model, and a process whose imported builder is older than
    the files on disk stores its output under its own code's key (the cache directory is shared by every
    checkout on the machine). ``name`` is checked; the key covers the whole package, as a builder may import
    any of its modules."""
    import hashlib

    builder(name)
    digest = hashlib.sha256(CACHE_KEY_SCHEME)
    for module in builder_modules():
        digest.update(module.encode() + b"\0" + loaded_source(module) + b"\0")
    return digest.hexdigest()[:8]


def ensure_tiny(seed: int = 0, name: str = TINY_NAME) -> Path:
    """The cached directory of the tiny model ``name``, built on first use."""
    mod = builder(name)
    path = cache_dir() / f"{mod.NAME}-v{mod.VERSION}-{source_hash(name)}-seed{seed}"
    if not (path / "tiny_model.json").is_file():
        from train.tiny.common import write_model_dir

        model, processor = _build(mod, seed)  # the code source_hash hashed (LOADED_SOURCE)
        # Another process may have finished the same build meanwhile: keep its directory (same key, same code).
        write_model_dir(path, model, processor, {"name": mod.NAME, "version": mod.VERSION, "seed": seed},
                        keep_existing=True)
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
