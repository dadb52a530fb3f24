"""Row access to one data file, whatever its container: JSONL, JSON array, parquet, saved HF dataset.

Every kind streams (``iter_rows``: never the whole file in memory) and gives random access by row
(``get``) for the mixer. JSON and JSONL get a row-offset index (uint64 per row) built in one chunked
pass; for files above ``_CACHE_MIN_BYTES`` it is cached on disk (keyed by path, size and modification
time) and read entry by entry, so a 10-million-row manifest costs one scan once and flat memory after
that. Parquet rows are read a row group at a time (the last two are kept).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import logging
import os
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from data_mix.badsample import BadSample

log = logging.getLogger("data_mix")

_CHUNK = 16 << 20
_CACHE_MIN_BYTES = 32 << 20
_MAX_ELEMENT_BYTES = 256 << 20


class DataFileError(ValueError):
    """A file that cannot be read at all (not a per-row problem): names the file and where it broke."""


def _parse(text: bytes | str, path: str, row: int) -> dict:
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadSample(path, row, "malformed_json", str(exc)) from None
    if not isinstance(obj, dict):
        raise BadSample(path, row, "malformed_json", f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _index_cache_path(path: str, cache_dir: str | None, kind: str) -> Path:
    st = os.stat(path)
    key = hashlib.sha1(f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}|{kind}".encode()).hexdigest()
    base = Path(cache_dir) if cache_dir else \
        Path(os.environ.get("SPATIALTREE_CACHE", "~/.cache/spatialtree")).expanduser() / "index"
    return base / f"{key[:24]}.{kind}.u64"


def _cached_index(path: str, cache_dir: str | None, kind: str, build_chunks):
    """(rows, 2) uint64 [start, end) byte spans. ``build_chunks()`` yields them in pieces; for big files
    the pieces go straight to a raw cache file (memory stays flat while indexing) read with pread."""
    if os.path.getsize(path) < _CACHE_MIN_BYTES:
        parts = list(build_chunks())
        return np.concatenate(parts) if parts else np.zeros((0, 2), np.uint64)
    cpath = _index_cache_path(path, cache_dir, kind)
    if not cpath.exists():
        cpath.parent.mkdir(parents=True, exist_ok=True)
        tmp = cpath.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            for part in build_chunks():
                fh.write(np.ascontiguousarray(part, np.uint64).tobytes())
        os.replace(tmp, cpath)  # atomic: ranks indexing the same file at once do not see half a file
    return DiskIndex(str(cpath))


class DiskIndex:
    """A cached index read entry by entry with pread: resident memory stays flat however many rows
    are drawn (a memory map would keep every touched page, and its read-ahead, resident)."""

    def __init__(self, path: str):
        self.path = path
        self._n = os.path.getsize(path) // 16
        self._fd, self._pid = None, None

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i: int) -> tuple[int, int]:
        if not 0 <= i < self._n:
            raise IndexError(f"row {i} outside [0, {self._n})")
        if self._fd is None or self._pid != os.getpid():
            self._fd, self._pid = os.open(self.path, os.O_RDONLY), os.getpid()
        raw = os.pread(self._fd, 16, 16 * int(i))
        return int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little")

    def __getstate__(self):
        return {**self.__dict__, "_fd": None, "_pid": None}


class _ByteSpanFile:
    """A file whose rows are JSON objects at byte spans [start, end): the span index is built once by the
    subclass's ``_index_chunks`` (cached on disk for big files, see ``_cached_index``) and ``get`` reads
    one span."""

    _INDEX_KIND = ""
    """Names the file kind in the index cache key."""

    def __init__(self, path: str, cache_dir: str | None = None):
        self.path = path
        self._cache_dir = cache_dir
        self._index: np.ndarray | DiskIndex | None = None  # (rows, 2) [start, end) byte spans
        self._fh = None
        self._fh_pid = None

    def _index_chunks(self) -> Iterator[np.ndarray]:
        raise NotImplementedError

    @property
    def index(self) -> np.ndarray | DiskIndex:
        if self._index is None:
            self._index = _cached_index(self.path, self._cache_dir, self._INDEX_KIND, self._index_chunks)
        return self._index

    def __len__(self) -> int:
        return len(self.index)

    def _handle(self):
        """The read handle, reopened in a new process: a forked DataLoader worker must not share the
        parent's file offset."""
        if self._fh is None or self._fh_pid != os.getpid():
            self._fh, self._fh_pid = open(self.path, "rb"), os.getpid()
        return self._fh

    def get(self, i: int) -> dict:
        start, end = (int(x) for x in self.index[i])
        fh = self._handle()
        fh.seek(start)
        return _parse(fh.read(end - start), self.path, i)

    def __getstate__(self):  # file handles do not cross process boundaries
        return {**self.__dict__, "_fh": None}


class JsonlFile(_ByteSpanFile):
    """One JSON object per line. Blank lines are not rows."""

    _INDEX_KIND = "jsonl"

    def _index_chunks(self) -> Iterator[np.ndarray]:
        """[start, end) byte spans of the non-blank lines, one array per chunk read."""
        size = os.path.getsize(self.path)
        with open(self.path, "rb") as fh, open(self.path, "rb") as peek:
            base, line_start = 0, 0
            while True:
                chunk = fh.read(_CHUNK)
                if chunk:
                    nl = np.flatnonzero(np.frombuffer(chunk, np.uint8) == 10).astype(np.uint64) + np.uint64(base)
                    base += len(chunk)
                elif line_start < size:  # last line without a newline
                    nl = np.array([size], np.uint64)
                else:
                    return
                if not len(nl):
                    continue
                starts = np.concatenate([[np.uint64(line_start)], nl[:-1] + np.uint64(1)])
                line_start = int(nl[-1]) + 1
                lengths = nl - starts
                keep = lengths > 0
                for i in np.flatnonzero(keep & (lengths <= 4)):  # lines of only spaces or "\r" are blank too
                    peek.seek(int(starts[i]))
                    keep[i] = bool(peek.read(int(lengths[i])).strip())
                yield np.stack([starts[keep], nl[keep]], axis=1)
                if not chunk:
                    return

    def iter_rows(self) -> Iterator[tuple[int, dict | BadSample]]:
        row = 0
        with open(self.path, "rb") as fh:
            for line in fh:
                if not line.strip():
                    continue
                try:
                    yield row, _parse(line, self.path, row)
                except BadSample as exc:
                    yield row, exc
                row += 1


class JsonArrayFile(_ByteSpanFile):
    """A JSON array of objects (the usual LLaVA ``.json``), parsed incrementally element by element."""

    _INDEX_KIND = "json"

    def _elements(self) -> Iterator[tuple[int, int, Any]]:
        """(byte start, byte end, parsed value) of every element, reading the file in chunks."""
        dec = json.JSONDecoder()
        utf8 = codecs.getincrementaldecoder("utf-8")()
        with open(self.path, "rb") as fh:
            st = {"buf": "", "pos": 0, "byte": 0, "eof": False}  # byte = file offset of buf[pos]

            def more() -> bool:
                chunk = fh.read(_CHUNK)
                if not chunk:
                    st["eof"] = True
                    return False
                try:
                    text = utf8.decode(chunk)
                except UnicodeDecodeError as exc:
                    raise DataFileError(f"{self.path}: not UTF-8 near byte {st['byte']}: {exc}") from None
                st["buf"] = st["buf"][st["pos"]:] + text
                st["pos"] = 0
                return True

            def skip_ws() -> None:
                while True:
                    buf, pos = st["buf"], st["pos"]
                    n = len(buf)
                    while pos < n and buf[pos] in " \t\r\n":
                        pos += 1
                    st["byte"] += pos - st["pos"]
                    st["pos"] = pos
                    if pos < n or not more():
                        return

            skip_ws()
            if st["byte"] == 0 and st["buf"].startswith("\ufeff"):  # a UTF-8 byte order mark (3 bytes)
                st["pos"], st["byte"] = 1, 3
                skip_ws()
            if st["pos"] >= len(st["buf"]) or st["buf"][st["pos"]] != "[":
                raise DataFileError(f"{self.path}: a .json data file must hold a JSON array of objects")
            st["pos"] += 1
            st["byte"] += 1
            index = 0
            while True:
                skip_ws()
                if st["pos"] >= len(st["buf"]):
                    raise DataFileError(f"{self.path}: the JSON array is not closed (after element {index})")
                if st["buf"][st["pos"]] == "]":
                    st["pos"] += 1
                    st["byte"] += 1
                    skip_ws()
                    if st["pos"] < len(st["buf"]):  # never drop what follows the array unread
                        raise DataFileError(f"{self.path}: more data at byte {st['byte']}, after the JSON array "
                                            f"of {index} elements ended")
                    return
                if index > 0:
                    if st["buf"][st["pos"]] != ",":
                        raise DataFileError(f"{self.path}: element {index + 1}: expected ',' between elements")
                    st["pos"] += 1
                    st["byte"] += 1
                    skip_ws()
                while True:
                    try:
                        value, end = dec.raw_decode(st["buf"], st["pos"])
                        if end == len(st["buf"]) and not st["eof"]:  # a number may go on in the next chunk
                            raise json.JSONDecodeError("incomplete", st["buf"], end)
                        break
                    except json.JSONDecodeError as exc:
                        if len(st["buf"]) - st["pos"] > _MAX_ELEMENT_BYTES or not more():
                            raise DataFileError(f"{self.path}: element {index + 1} is not valid JSON: {exc.msg}"
                                                f" (the rest of the file cannot be read)") from None
                start_b = st["byte"]
                end_b = start_b + len(st["buf"][st["pos"]:end].encode("utf-8"))
                yield start_b, end_b, value
                st["pos"], st["byte"] = end, end_b
                index += 1

    def _index_chunks(self) -> Iterator[np.ndarray]:
        spans = []
        for start, end, _ in self._elements():
            spans.append((start, end))
            if len(spans) == 65536:
                yield np.array(spans, np.uint64)
                spans = []
        if spans:
            yield np.array(spans, np.uint64)

    def iter_rows(self) -> Iterator[tuple[int, dict | BadSample]]:
        for row, (_s, _e, value) in enumerate(self._elements()):
            if isinstance(value, dict):
                yield row, value
            else:
                yield row, BadSample(self.path, row, "malformed_json",
                                     f"expected a JSON object, got {type(value).__name__}")


class ArrayInJsonlFile(JsonArrayFile):
    """A ``.jsonl`` file that starts with ``[``: read as a JSON array; its errors say so."""

    def _elements(self) -> Iterator[tuple[int, int, Any]]:
        try:
            yield from super()._elements()
        except DataFileError as exc:
            raise DataFileError(f"{exc} (this .jsonl file starts with '[', so it was read as one JSON array; "
                                "in JSONL every line is one JSON object)") from None


class ParquetFile:
    """A parquet file; random access reads the row group holding the row (the last two are kept)."""

    def __init__(self, path: str, cache_dir: str | None = None):
        import pyarrow.parquet as pq

        self.path = path
        meta = pq.ParquetFile(path).metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self._starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self._groups: OrderedDict[int, list[dict]] = OrderedDict()
        self._pf = None
        self._pf_pid = None

    def __len__(self) -> int:
        return int(self._starts[-1])

    def get(self, i: int) -> dict:
        import pyarrow.parquet as pq

        if not 0 <= i < len(self):
            raise IndexError(i)
        g = bisect_right(self._starts, i) - 1
        if self._pf is None or self._pf_pid != os.getpid():
            self._pf, self._pf_pid, self._groups = pq.ParquetFile(self.path), os.getpid(), OrderedDict()
        if g not in self._groups:
            self._groups[g] = self._pf.read_row_group(g).to_pylist()
            while len(self._groups) > 2:
                self._groups.popitem(last=False)
        return self._groups[g][i - int(self._starts[g])]

    def iter_rows(self) -> Iterator[tuple[int, dict | BadSample]]:
        import pyarrow.parquet as pq

        row = 0
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=1024):
            for rec in batch.to_pylist():
                yield row, rec
                row += 1

    def __getstate__(self):
        return {**self.__dict__, "_pf": None, "_groups": OrderedDict()}


def _undecoded_images(ds):
    """Image columns as {path, bytes} (decoded later by load_media, with its checks), not PIL objects."""
    import datasets

    for name, feat in ds.features.items():
        if isinstance(feat, datasets.Image) and feat.decode:
            ds = ds.cast_column(name, datasets.Image(decode=False))
        elif isinstance(feat, (datasets.List, datasets.LargeList)) and isinstance(feat.feature, datasets.Image):
            ds = ds.cast_column(name, type(feat)(datasets.Image(decode=False)))
    return ds


class HFDatasetDir:
    """A directory written by ``datasets.Dataset.save_to_disk`` (memory-mapped Arrow)."""

    def __init__(self, path: str, split: str | None = None):
        self.path = path
        self.split = split
        self._ds = None

    @property
    def ds(self):
        if self._ds is None:
            import datasets

            ds = datasets.load_from_disk(self.path)
            if isinstance(ds, datasets.DatasetDict):
                names = list(ds)
                split = self.split or ("train" if "train" in ds else (names[0] if len(names) == 1 else None))
                if split not in ds:
                    raise DataFileError(f"{self.path}: a DatasetDict with splits {names}: set the source's "
                                        f"'split' in the registry")
                ds = ds[split]
            self._ds = _undecoded_images(ds)
        return self._ds

    def __len__(self) -> int:
        return len(self.ds)

    def get(self, i: int) -> dict:
        return self.ds[int(i)]

    def iter_rows(self) -> Iterator[tuple[int, dict | BadSample]]:
        yield from enumerate(self.ds)

    def __getstate__(self):
        return {**self.__dict__, "_ds": None}


def _json_container(path: str) -> str | None:
    """"array" when the file's first non-blank character is ``[``; "lines" when its first line is one complete
    JSON object; None otherwise (empty, or something else: the reader for the extension reports it)."""
    with open(path, "rb") as fh:
        head = fh.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
        if head.startswith(b"["):
            return "array"
        if not head.startswith(b"{"):
            return None
        fh.seek(0)
        first = fh.readline(_MAX_ELEMENT_BYTES)
    try:
        return "lines" if isinstance(json.loads(first), dict) else None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def open_rowfile(path: str, *, cache_dir: str | None = None, split: str | None = None):
    """The right reader for ``path`` by its extension (or a saved HF dataset directory).

    The container is checked against the extension: a ``.jsonl`` file holding a JSON array (LLaVA-Instruct's
    ``llava_instruct_150k.json`` renamed, say) is read as a JSON array, and a ``.json`` file of one object per
    line as JSONL, each with a warning that names the file; anything else goes to the extension's reader."""
    if os.path.isdir(path):
        if any(os.path.exists(os.path.join(path, f)) for f in ("dataset_info.json", "state.json", "dataset_dict.json")):
            return HFDatasetDir(path, split)
        raise DataFileError(f"{path}: a directory that is not a saved HF dataset (no dataset_info.json)")
    low = path.lower()
    if low.endswith(".jsonl") or low.endswith(".ndjson"):
        if os.path.isfile(path) and _json_container(path) == "array":
            log.warning("%s is a JSON array, not one JSON object per line: reading it as a JSON array "
                        "(name it .json to silence this)", path)
            return ArrayInJsonlFile(path, cache_dir)
        return JsonlFile(path, cache_dir)
    if low.endswith(".json"):
        if os.path.isfile(path) and _json_container(path) == "lines":
            log.warning("%s holds one JSON object per line, not a JSON array: reading it as JSONL "
                        "(name it .jsonl to silence this)", path)
            return JsonlFile(path, cache_dir)
        return JsonArrayFile(path, cache_dir)
    if low.endswith(".parquet"):
        return ParquetFile(path, cache_dir)
    raise DataFileError(f"{path}: unknown data file type (use .jsonl, .json, .parquet or a saved HF dataset dir)")
