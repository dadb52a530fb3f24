"""A local copy of the data lmms-eval's ``spatialtreebench`` task reads, so the released task runs unchanged offline.

    python -m eval_hooks.lmms_data BENCH DIR      # then eval.lmms_eval_data=DIR (or HF_HOME=DIR HF_HUB_OFFLINE=1 ...)

The task (lmms-eval 0.7.3, ``tasks/spatialtreebench/spatialtreebench.yaml``) loads the hub dataset
``LongfeiLi/SpatialTree-Bench`` with ``datasets.load_dataset`` and finds a record's media at
``$HF_HOME/SpatialTreeBench/<the record's relative path>`` (its ``dataset_kwargs.cache_dir``; ``api/task.py`` skips
the hub download when that folder exists, and ``utils.py`` looks media up there). From a bench file in the public
schema (JSONL, JSON or parquet; media paths relative to its folder) this writes, under DIR:

- ``SpatialTreeBench/<media path>``: a symlink to each image and video the records name;
- ``datasets/LongfeiLi___spatial_tree-bench/default/0.0.0/local/``: the records, unchanged, as the datasets cache
  that ``load_dataset("LongfeiLi/SpatialTree-Bench")`` reads when the hub is offline (its "latest cached version").

lmms-eval then runs with ``HF_HOME=DIR``, ``HF_HUB_OFFLINE=1``, ``HF_DATASETS_OFFLINE=1`` (:func:`environment`;
``eval.lmms_eval_data=DIR`` gives them to the process ``eval_hooks.lmms`` starts).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

HUB_ID = "LongfeiLi/SpatialTree-Bench"
MEDIA_DIR = "SpatialTreeBench"  # spatialtreebench.yaml: dataset_kwargs.cache_dir
CACHE_DIR = Path("datasets") / "LongfeiLi___spatial_tree-bench" / "default" / "0.0.0" / "local"
BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}


def bench_path(bench: str | Path) -> Path:
    """The bench file: ``bench`` itself, or ``bench/test.jsonl`` for a folder."""
    path = Path(bench)
    if path.is_dir():
        path = path / "test.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such bench file")
    if path.suffix not in BUILDERS:
        raise ValueError(f"{path}: a bench file is .jsonl, .json or .parquet")
    return path


def _media(row: dict[str, Any]) -> list[str]:
    return [p for key in ("image", "video") for p in (row.get(key) or []) if isinstance(p, str) and p]


def _link_media(rows: list[dict[str, Any]], bench: Path, media_root: Path) -> int:
    """Symlink every relative media path of ``rows`` under ``media_root``; returns how many."""
    linked: set[str] = set()
    for i, row in enumerate(rows):
        for rel in _media(row):
            if os.path.isabs(rel) or rel in linked:
                continue
            src = bench.parent / rel
            if not src.is_file():
                raise FileNotFoundError(f"{bench}: row {i}: media file {rel} not found (looked at {src})")
            dst = media_root / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if dst.is_symlink() or dst.exists():
                dst.unlink()
            dst.symlink_to(src.resolve())
            linked.add(rel)
    return len(linked)


def _write_cache(bench: Path, hf_home: Path) -> int:
    """The records as ``datasets`` caches the hub dataset (config ``default``, split ``test``); returns the count."""
    import importlib

    target = hf_home / CACHE_DIR
    with tempfile.TemporaryDirectory(dir=hf_home) as tmp:
        module = importlib.import_module(f"datasets.packaged_modules.{BUILDERS[bench.suffix]}."
                                         f"{BUILDERS[bench.suffix]}")
        builder_cls = next(v for k, v in vars(module).items() if k.lower() == BUILDERS[bench.suffix])
        builder = builder_cls(cache_dir=tmp, dataset_name=HUB_ID.split("/")[1], config_name="default",
                              data_files={"test": str(bench.resolve())}, hash="local")
        builder.download_and_prepare()
        if target.exists():
            shutil.rmtree(target)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(builder.cache_dir, target)
    info = json.loads((target / "dataset_info.json").read_text())
    return int(info["splits"]["test"]["num_examples"])


def _read_rows(bench: Path) -> list[dict[str, Any]]:
    if bench.suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(bench, columns=None).to_pylist()
    text = bench.read_text()
    if bench.suffix == ".json":
        return json.loads(text)
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def write_task_copy(bench: str | Path, out: str | Path) -> dict[str, Any]:
    """Write the local copy of ``bench`` under ``out`` (see the module doc); returns what was written."""
    path = bench_path(bench)
    hf_home = Path(out).resolve()
    hf_home.mkdir(parents=True, exist_ok=True)
    rows = _read_rows(path)
    if not rows:
        raise ValueError(f"{path}: no records")
    media = _link_media(rows, path, hf_home / MEDIA_DIR)
    records = _write_cache(path, hf_home)
    return {"bench": str(path), "hf_home": str(hf_home), "records": records, "media_files": media}


def environment(data_dir: str | Path) -> dict[str, str]:
    """Environment of an lmms-eval process that reads the local copy in ``data_dir`` instead of the hub."""
    home = Path(data_dir).resolve()
    if not (home / CACHE_DIR / "dataset_info.json").is_file():
        raise FileNotFoundError(f"eval.lmms_eval_data={data_dir}: no local task data there "
                                f"(write it with: python -m eval_hooks.lmms_data BENCH {data_dir})")
    return {"HF_HOME": str(home), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
            "SPATREEBENCH_MEDIA_ROOT": str(home)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval_hooks.lmms_data", description=__doc__.split("\n\n")[0])
    parser.add_argument("bench", help="a bench file (JSONL, JSON, parquet) or a folder holding test.jsonl")
    parser.add_argument("out", help="the folder lmms-eval gets as HF_HOME")
    args = parser.parse_args(argv)
    try:
        done = write_task_copy(args.bench, args.out)
    except (FileNotFoundError, ValueError) as exc:
        print(f"eval_hooks.lmms_data: error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {done['records']} records and {done['media_files']} media links of {done['bench']} under "
          f"{done['hf_home']}; run lmms-eval with eval.lmms_eval_data={done['hf_home']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
