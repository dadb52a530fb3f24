"""Result files written atomically: a reader (the sweep tool, a dashboard) never sees half a file."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def _finite(obj: Any) -> Any:
    """NaN and infinities (e.g. a number parsed from a response) become strings: strict JSON has none.
    numpy scalars and arrays become Python numbers and lists."""
    if type(obj).__module__ == "numpy":
        obj = obj.tolist() if hasattr(obj, "tolist") else obj
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _dumps(obj: Any, **kw: Any) -> str:
    return json.dumps(_finite(obj), ensure_ascii=False, allow_nan=False, default=str, **kw)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, _dumps(obj, indent=2) + "\n")


def atomic_write_jsonl(path: str | Path, rows: Iterable[Any]) -> Path:
    return atomic_write_text(path, "".join(_dumps(r) + "\n" for r in rows))


def append_jsonl(path: str | Path, row: Any) -> None:
    """Append one JSON line (one write call, so concurrent appenders do not interleave lines)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(_dumps(row) + "\n")


def read_json(path: str | Path) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)
