"""Decontamination: no training row of a mix may be an evaluation record.

A training row is contaminated by a bench record when it shows every image / video of the record (same
file contents, SHA-256) and the record's question occurs in the row's user text. Text is compared after
normalising (Unicode NFKC, case folded, ``<image>`` / ``<video>`` tags removed, every run of characters
that are not letters or digits turned into one space), as whole words. A record without media matches a
row without media whose whole user text is its question.

Cost: the bench is indexed once by the byte sizes of its media (small; its media are hashed only when a
training file of the same size turns up). The training sources are streamed row by row: each media file
costs one ``stat``, and is hashed only when its size equals a bench file's. Nothing is held per training
row; hashes are cached per path (bounded).

``check(data, mix)`` is what the trainers call before the model loads (``data.decontaminate``:
error / warn / off); ``python launch/decontam.py recipe=NAME`` prints the full report.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import time
import unicodedata
from collections import OrderedDict, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from data_mix.badsample import BadSample
from data_mix.readers import SourceRows, resolve_spec
from data_mix.registry import SourceSpec, load_registry

log = logging.getLogger("data_mix.decontam")

_NOT_WORD = re.compile(r"[\W_]+")
_TAGS = re.compile(r"<image>|<video>")
SHOWN_HITS = 20
"""Contaminated rows listed in a message (all are counted)."""


class ContaminationError(ValueError):
    """Training rows are evaluation records (``data.decontaminate=error``); the message names them."""


def normalize(text: str) -> str:
    """Text as compared: NFKC, case folded, media tags dropped, non-alphanumeric runs -> one space."""
    text = _TAGS.sub(" ", unicodedata.normalize("NFKC", text).casefold())
    return _NOT_WORD.sub(" ", text).strip()


def user_text(sample) -> str:
    """The text of every user turn of a Sample, joined."""
    return "\n".join(part.get("text", "") for m in sample.messages if m.get("role") == "user"
                     for part in (m["content"] if isinstance(m["content"], list) else [{"text": m["content"]}])
                     if isinstance(part, dict) and part.get("text"))


def where(file: str, row: int) -> str:
    return f"{file}, row {row + 1}"


class MediaHasher:
    """Byte size and SHA-256 of an image / video: a path, embedded bytes, or a list of frame paths."""

    def __init__(self, cache_size: int = 200_000):
        self.cache: OrderedDict[str, str] = OrderedDict()
        self.cache_size = cache_size
        self.hashed = 0

    @staticmethod
    def size(item) -> int:
        if isinstance(item, (bytes, bytearray)):
            return len(item)
        if isinstance(item, (list, tuple)):
            return sum(os.path.getsize(f) for f in item)
        return os.path.getsize(item)

    def digest(self, item) -> str:
        if isinstance(item, (bytes, bytearray)):
            return hashlib.sha256(item).hexdigest()
        if isinstance(item, (list, tuple)):
            return hashlib.sha256("".join(self.digest(f) for f in item).encode()).hexdigest()
        key = str(item)
        if key in self.cache:
            self.cache.move_to_end(key)
            return self.cache[key]
        h = hashlib.sha256()
        with open(item, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
        self.hashed += 1
        self.cache[key] = value = h.hexdigest()
        if len(self.cache) > self.cache_size:
            self.cache.popitem(last=False)
        return value


@dataclass
class BenchRecord:
    where: str
    source: str
    question: str
    """Normalised question."""
    media: list
    """Images then videos, as the Sample gives them."""
    shown: str = ""
    """The question as written (first 80 characters), for messages."""


@dataclass
class BenchIndex:
    """Bench records by the byte size of each of their media, and media-free records by question."""

    records: list[BenchRecord] = field(default_factory=list)
    by_size: dict[int, list[tuple[int, int]]] = field(default_factory=lambda: defaultdict(list))
    text_only: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))
    skipped: int = 0
    """Unreadable bench rows, or rows whose question or media cannot be read (not checked against)."""
    names: list[str] = field(default_factory=list)

    def add(self, sample, hasher: MediaHasher) -> None:
        question = normalize(sample.meta.get("question") or user_text(sample))
        media = [*sample.images, *sample.videos]
        try:
            sizes = [hasher.size(m) for m in media]
        except OSError:
            sizes = None
        if not question or sizes is None:
            self.skipped += 1
            return
        shown = " ".join(str(sample.meta.get("question") or user_text(sample)).split())[:80]
        i = len(self.records)
        self.records.append(BenchRecord(where(sample.file, sample.row), sample.source, question, media, shown))
        if not media:
            self.text_only[question].append(i)
        for j, size in enumerate(sizes):
            self.by_size[size].append((i, j))

    @classmethod
    def build(cls, benches: list, data, hasher: MediaHasher) -> BenchIndex:
        index = cls()
        for bench in benches:
            spec = resolve_spec(bench, data)
            index.names.append(spec.name)
            for item in SourceRows(spec, data):
                if isinstance(item, BadSample):
                    index.skipped += 1
                else:
                    index.add(item, hasher)
        return index


@dataclass
class Hit:
    train: str
    """Training file and row."""
    train_source: str
    bench: str
    """Bench file and row."""
    bench_source: str
    question: str


@dataclass
class DecontamReport:
    """What a scan checked and found."""

    sources: list[str]
    benches: list[str]
    bench_records: int = 0
    bench_skipped: int = 0
    rows_checked: int = 0
    rows_unreadable: int = 0
    """Training rows that could not be read (the mixer stops on or skips them when it draws them)."""
    media_missing: int = 0
    """Training rows with a media file that does not exist (not checked; the mixer reports them)."""
    files_hashed: int = 0
    seconds: float = 0.0
    n_hits: int = 0
    hits: list[Hit] = field(default_factory=list)
    """The first SHOWN_HITS contaminated rows."""

    def summary(self) -> str:
        verdict = f"{self.n_hits} contaminated training row(s)" if self.n_hits else "clean"
        notes = [f"{n} {what}" for n, what in ((self.rows_unreadable, "training rows unreadable"),
                                               (self.media_missing, "with missing media"),
                                               (self.bench_skipped, "bench rows unreadable"))
                 if n]
        return (f"decontamination: {verdict}: {self.rows_checked} training rows of {', '.join(self.sources)} "
                f"against {self.bench_records} records of {', '.join(self.benches)} in {self.seconds:.1f} s "
                f"({self.files_hashed} media files hashed)" + (f"; not checked: {', '.join(notes)}" if notes else ""))

    def message(self) -> str:
        """One paragraph naming the contaminated rows (the first SHOWN_HITS)."""
        shown = "; ".join(f"{h.train} ({h.train_source}) is {h.bench} ({h.bench_source}): \"{h.question}\""
                          for h in self.hits)
        more = f"; and {self.n_hits - len(self.hits)} more" if self.n_hits > len(self.hits) else ""
        return (f"{self.n_hits} training row(s) are evaluation records (same media contents and question): "
                f"{shown}{more}")

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _matches(sample, index: BenchIndex, hasher: MediaHasher) -> list[int]:
    """Bench records (indices) that the training ``sample`` contains."""
    media = [*sample.images, *sample.videos]
    if not media:
        if not index.text_only:
            return []
        return list(index.text_only.get(normalize(user_text(sample)), []))
    seen: dict[int, set[int]] = defaultdict(set)
    for item in media:
        candidates = index.by_size.get(hasher.size(item))
        if not candidates:
            continue
        mine = hasher.digest(item)
        for i, j in candidates:
            if hasher.digest(index.records[i].media[j]) == mine:
                seen[i].add(j)
    full = [i for i, js in seen.items() if len(js) == len(index.records[i].media)]
    if not full:
        return []
    text = f" {normalize(user_text(sample))} "
    return [i for i in full if f" {index.records[i].question} " in text]


def resolve_bench(bench, data):
    """A registry name as it is; a bench file (JSONL, JSON, parquet, or a folder holding ``test.jsonl``) as an
    inline bench source whose media are relative to its folder (the rule of ``eval.bench``)."""
    if isinstance(bench, SourceSpec) or bench in load_registry(data.registry):
        return bench
    path = Path(str(bench)).expanduser()
    if path.is_dir() and (path / "test.jsonl").is_file():
        path = path / "test.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"evaluation set {bench!r} is neither a source of the registry "
                                f"{load_registry(data.registry).path} nor an existing bench file")
    path = path.resolve()
    return SourceSpec(name=path.stem if path.stem != "test" else path.parent.name, format="bench",
                      files=[str(path)], media_root=str(path.parent))


def scan(sources: list, benches: list, data, progress: bool = True) -> DecontamReport:
    """Check every row of the training ``sources`` against the ``benches`` (registry names or SourceSpecs)."""
    from tqdm import tqdm

    start = time.time()
    hasher = MediaHasher()
    index = BenchIndex.build([resolve_bench(b, data) for b in benches], data, hasher)
    specs = [resolve_spec(s, data) for s in sources]
    report = DecontamReport(sources=[s.name for s in specs], benches=index.names, bench_records=len(index.records),
                            bench_skipped=index.skipped)
    rows = [SourceRows(spec, data) for spec in specs]
    bar = tqdm(total=sum(len(r) for r in rows), desc="decontamination", unit="row", file=sys.stderr,
               disable=not progress, mininterval=1.0)
    for source in rows:
        for item in source:
            bar.update(1)
            if isinstance(item, BadSample):
                report.rows_unreadable += 1
                continue
            try:
                found = _matches(item, index, hasher)
            except OSError:
                report.media_missing += 1
                continue
            report.rows_checked += 1
            for i in found:
                report.n_hits += 1
                if len(report.hits) < SHOWN_HITS:
                    rec = index.records[i]
                    report.hits.append(Hit(where(item.file, item.row), item.source, rec.where, rec.source, rec.shown))
    bar.close()
    report.files_hashed, report.seconds = hasher.hashed, time.time() - start
    return report


def check(data, mix, progress: bool = True) -> DecontamReport | None:
    """The trainers' check, before the model loads: every source of ``mix`` against ``data.decontaminate_against``
    under ``data.decontaminate`` (``error`` raises ContaminationError naming the rows, ``warn`` logs them).
    Returns None when nothing was checked (and says why in the log)."""
    if data.decontaminate == "off":
        log.info("decontamination: off (data.decontaminate=off)")
        return None
    sources = [s for g in mix.groups.values() for s in g.sources]
    if not sources:
        return None
    benches = list(data.decontaminate_against or [])
    if not benches:
        log.warning("decontamination: NOT checked: no evaluation set (data.decontaminate_against is empty and "
                    "eval.bench is null)")
        return None
    try:
        benches = [resolve_bench(b, data) for b in benches]
        for b in benches:
            resolve_spec(b, data).file_paths(data)
    except FileNotFoundError as exc:
        log.warning("decontamination: NOT checked: %s", exc)
        return None
    report = scan(sources, benches, data, progress)
    if not report.n_hits:
        log.info("%s", report.summary())
        return report
    if data.decontaminate == "error":
        raise ContaminationError(f"{report.message()}. {report.summary()}. Remove those rows from the training "
                                 "data, or set data.decontaminate=warn to train anyway")
    log.warning("%s (data.decontaminate=warn: training anyway). %s", report.message(), report.summary())
    return report
