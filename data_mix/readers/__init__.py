"""Readers: rows of a registry source (any file container, any record format) as Samples.

``read_source(name, data)`` streams a whole source in file order; :class:`SourceRows` gives the
mixer random access by row number across the source's files.
"""

from __future__ import annotations

import logging
from bisect import bisect_right
from collections.abc import Iterator
from functools import cached_property

import numpy as np

from data_mix.badsample import BadSample, BadSampleTracker
from data_mix.readers.bench import bench_sample
from data_mix.readers.llava import llava_sample
from data_mix.readers.messages import messages_sample
from data_mix.registry import SourceSpec, load_registry
from data_mix.rowfiles import open_rowfile
from data_mix.sample import Sample

log = logging.getLogger("data_mix")

CONVERTERS = {"llava": llava_sample, "bench": bench_sample, "messages": messages_sample}


def to_sample(rec: dict, spec: SourceSpec, data, file: str, row: int) -> Sample:
    """One raw row of ``spec``'s format as a Sample (raises BadSample)."""
    return CONVERTERS[spec.format](rec, spec, data, file, row)


def resolve_spec(name_or_spec: str | SourceSpec, data) -> SourceSpec:
    if isinstance(name_or_spec, SourceSpec):
        return name_or_spec
    return load_registry(data.registry).get(name_or_spec)


class SourceRows:
    """Random access to the rows of one source, numbered across its files in order."""

    def __init__(self, spec: SourceSpec, data):
        self.spec, self.data = spec, data
        self.paths = spec.file_paths(data)
        self.files = [open_rowfile(p, cache_dir=data.index_cache, split=spec.split) for p in self.paths]

    @cached_property
    def _starts(self) -> np.ndarray:  # row counts need the offset index: built on first use only
        return np.concatenate([[0], np.cumsum([len(f) for f in self.files])]).astype(np.int64)

    def __len__(self) -> int:
        return int(self._starts[-1])

    def locate(self, i: int) -> tuple[int, int]:
        """(file number, row in that file) of source row ``i``."""
        if not 0 <= i < len(self):
            raise IndexError(f"source {self.spec.name!r} has {len(self)} rows, asked for row {i}")
        f = bisect_right(self._starts, i) - 1
        return f, i - int(self._starts[f])

    def get(self, i: int) -> Sample:
        """Source row ``i`` as a Sample (raises BadSample naming the file and its row)."""
        f, row = self.locate(i)
        rec = self.files[f].get(row)
        return to_sample(rec, self.spec, self.data, self.paths[f], row)

    def __iter__(self) -> Iterator[Sample | BadSample]:
        """Every row in file order, bad rows as BadSample objects (not raised)."""
        for _, item in self.indexed():
            yield item

    def indexed(self) -> Iterator[tuple[int, Sample | BadSample]]:
        """(source row number, Sample or BadSample) of every row in file order: one sequential read per file."""
        for f, (path, rf) in enumerate(zip(self.paths, self.files)):
            base = int(self._starts[f])
            for row, rec in rf.iter_rows():
                if isinstance(rec, BadSample):
                    yield base + row, rec
                    continue
                try:
                    yield base + row, to_sample(rec, self.spec, self.data, path, row)
                except BadSample as exc:
                    yield base + row, exc


def read_source(name_or_spec: str | SourceSpec, data, tracker: BadSampleTracker | None = None) -> Iterator[Sample]:
    """Every sample of a source in file order, streaming; bad rows follow ``data.on_bad_sample``.

    Pass ``tracker`` to read the skip counts afterwards (a new one is made from ``data`` otherwise).
    Media are not opened here: :func:`data_mix.media.load_media` checks them when they are loaded.
    """
    spec = resolve_spec(name_or_spec, data)
    tracker = tracker if tracker is not None else BadSampleTracker.from_config(data)
    for item in SourceRows(spec, data):
        if isinstance(item, BadSample):
            tracker.bad(item)
        else:
            tracker.ok()
            yield item
    if tracker.skipped:
        log.warning("source %s: %s", spec.name, tracker.summary())


__all__ = ["SourceRows", "read_source", "to_sample", "resolve_spec"]
