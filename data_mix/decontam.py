"""Decontamination: no training row of a mix may be an evaluation record, nor a near copy of one.

A training row is contaminated by a bench record when its user text contains the record's question (content-word
containment >= ``near_dup.CONTAINMENT``: survives rewording, case, punctuation, word order) and it shows every
image of the record (pHash within ``near_dup.HAMMING`` bits: survives JPEG re-encoding and resizing, not crops)
and every video of the record (same file contents, SHA-256). A record without media matches a row without media
on the question alone. Thresholds, recall and false positives on a planted set: data_mix/near_dup.py, docs/DATA.md.

Cost: the bench is indexed once (its images hashed, its questions indexed: data_mix/question_index.py). The
training sources are streamed in batches of SCAN_BATCH rows: the text test runs first, over the batch in numpy, and
a row's images are decoded only when its text contains a bench question. Nothing is held per training row beyond
the batch; image hashes are cached per path (bounded).

``check(data, mix)`` is what the trainers call before the model loads (``data.decontaminate``): ``error`` stops
on a contaminated row (exit 1) and on an evaluation set that is missing, unreadable or not named (exit 2, before
anything is loaded); ``warn`` logs both and trains; ``off`` reads no evaluation set at all.
``python launch/decontam.py recipe=NAME`` prints the full report; :func:`run_record` is what run_info.json keeps.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from data_mix import near_dup
from data_mix.badsample import BadSample
from data_mix.near_dup import ImageHasher, content_words, hamming, normalize
from data_mix.question_index import QuestionIndex
from data_mix.readers import SourceRows, resolve_spec
from data_mix.registry import RegistryError, SourceSpec, load_registry

log = logging.getLogger("data_mix.decontam")

SHOWN_HITS = 20
"""Contaminated rows listed in a message (all are counted)."""
SCAN_BATCH = 4096
"""Training rows read before their text test runs (in numpy, data_mix.question_index)."""


class ContaminationError(ValueError):
    """Training rows are evaluation records (``data.decontaminate=error``); the message names them."""

    exit_code = 1


class EvalSetError(ContaminationError):
    """The evaluation set to check against is missing, unreadable or not named (``data.decontaminate=error``):
    nothing was checked, so the run stops (exit 2) before anything is loaded."""

    exit_code = 2


__all__ = ["ContaminationError", "EvalSetError", "check", "normalize", "run_record", "scan"]


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
    words: frozenset
    """Content words of the question (near_dup.content_words)."""
    image_hashes: list
    """pHash of each image."""
    videos: list
    """Videos (paths or frame lists), compared by contents."""
    shown: str = ""
    """The question as written (first 80 characters), for messages."""


@dataclass
class BenchIndex:
    """Bench records, their questions indexed by rare words (near_dup.QuestionIndex)."""

    records: list[BenchRecord] = field(default_factory=list)
    skipped: int = 0
    """Unreadable bench rows, or rows whose question or media cannot be read (not checked against)."""
    first_skipped: str = ""
    """Where the first skipped bench row is, and why."""
    names: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)
    text: QuestionIndex | None = None

    def skip(self, where_: str) -> None:
        self.skipped += 1
        self.first_skipped = self.first_skipped or where_

    def add(self, sample, images: ImageHasher) -> None:
        question = str(sample.meta.get("question") or user_text(sample))
        words = content_words(question)
        try:
            hashes = [images(m) for m in sample.images]
            _ = [MediaHasher.size(v) for v in sample.videos]
        except OSError as exc:
            self.skip(f"{where(sample.file, sample.row)}: {exc}")
            return
        if not normalize(question):
            self.skip(f"{where(sample.file, sample.row)}: no question")
            return
        shown = " ".join(question.split())[:80]
        self.records.append(BenchRecord(where(sample.file, sample.row), sample.source, words, hashes,
                                        list(sample.videos), shown))

    @classmethod
    def build(cls, benches: list, data, images: ImageHasher) -> BenchIndex:
        index = cls()
        for bench in benches:
            spec = resolve_spec(bench, data)
            index.names.append(spec.name)
            index.files += [str(f) for f in spec.file_paths(data)]
            for item in SourceRows(spec, data):
                if isinstance(item, BadSample):
                    index.skip(str(item))
                else:
                    index.add(item, images)
        index.text = QuestionIndex([r.words for r in index.records], near_dup.CONTAINMENT)
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
    """Videos hashed (SHA-256)."""
    images_decoded: int = 0
    """Images decoded for their dHash (bench images, and the images of rows whose text contains a question)."""
    rows_text_match: int = 0
    """Training rows whose text contains a bench question (their images were compared)."""
    bench_files: list[str] = field(default_factory=list)
    thresholds: dict = field(default_factory=lambda: {"containment": near_dup.CONTAINMENT,
                                                      "hamming": near_dup.HAMMING})
    seconds: float = 0.0
    n_hits: int = 0
    hits: list[Hit] = field(default_factory=list)
    first_bench_skipped: str = ""
    not_checked: str = ""
    """Why nothing (or not everything) was checked (``data.decontaminate=warn`` only: ``error`` stops instead)."""
    """The first SHOWN_HITS contaminated rows."""

    def summary(self) -> str:
        verdict = f"{self.n_hits} contaminated training row(s)" if self.n_hits else "clean"
        notes = [f"{n} {what}" for n, what in ((self.rows_unreadable, "training rows unreadable"),
                                               (self.media_missing, "with missing media"),
                                               (self.bench_skipped, "bench rows unreadable"))
                 if n]
        return (f"decontamination: {verdict}: {self.rows_checked} training rows of {', '.join(self.sources)} "
                f"against {self.bench_records} records of {', '.join(self.benches)} in {self.seconds:.1f} s "
                f"({self.images_decoded} images decoded, {self.rows_text_match} rows with a bench question)" + (f"; not checked: {', '.join(notes)}" if notes else ""))

    def message(self) -> str:
        """One paragraph naming the contaminated rows (the first SHOWN_HITS)."""
        shown = "; ".join(f"{h.train} ({h.train_source}) is {h.bench} ({h.bench_source}): \"{h.question}\""
                          for h in self.hits)
        more = f"; and {self.n_hits - len(self.hits)} more" if self.n_hits > len(self.hits) else ""
        return (f"{self.n_hits} training row(s) are evaluation records (near-duplicate images and question): "
                f"{shown}{more}")

    def to_dict(self) -> dict:
        from dataclasses import asdict

        return asdict(self)


def _matches(sample, index: BenchIndex, images: ImageHasher, videos: MediaHasher) -> tuple[bool, list[int]]:
    """(whether the row's text contains a bench question, the bench records (indices) that the training
    ``sample`` contains); OSError: a media file of the row cannot be read."""
    found = index.text.candidates(content_words(user_text(sample)))
    return bool(found), _media_matches(sample, found, index, images, videos)


def _media_matches(sample, found: list[int], index: BenchIndex, images: ImageHasher, videos: MediaHasher) -> list[int]:
    """Of the bench records ``found`` whose question the row's text contains, those whose media the row shows too."""
    row_hashes: list[int] | None = None
    out = []
    for i in found:
        rec = index.records[i]
        if not rec.image_hashes and not rec.videos:
            if not sample.images and not sample.videos:
                out.append(i)
            continue
        if len(sample.images) < len(rec.image_hashes) or len(sample.videos) < len(rec.videos):
            continue
        if rec.image_hashes:
            row_hashes = [images(m) for m in sample.images] if row_hashes is None else row_hashes
            if not all(any(hamming(h, r) <= near_dup.HAMMING for r in row_hashes) for h in rec.image_hashes):
                continue
        if rec.videos:
            mine = {videos.digest(v) for v in sample.videos}
            if not all(videos.digest(v) in mine for v in rec.videos):
                continue
        out.append(i)
    return out


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


def _batches(items: Iterable, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def scan(sources: list, benches: list, data, progress: bool = True) -> DecontamReport:
    """Check every row of the training ``sources`` against the ``benches`` (registry names or SourceSpecs)."""
    from tqdm import tqdm

    start = time.time()
    images, videos = ImageHasher(), MediaHasher()
    index = BenchIndex.build([resolve_bench(b, data) for b in benches], data, images)
    specs = [resolve_spec(s, data) for s in sources]
    report = DecontamReport(sources=[s.name for s in specs], benches=index.names, bench_records=len(index.records),
                            bench_skipped=index.skipped, bench_files=index.files)
    rows = [SourceRows(spec, data) for spec in specs]
    bar = tqdm(total=sum(len(r) for r in rows), desc="decontamination", unit="row", file=sys.stderr,
               disable=not progress, mininterval=1.0)
    for batch in _batches((item for source in rows for item in source), SCAN_BATCH):
        bar.update(len(batch))
        good = [item for item in batch if not isinstance(item, BadSample)]
        report.rows_unreadable += len(batch) - len(good)
        report.rows_checked += len(good)
        texts = index.text.match([content_words(user_text(item)) for item in good])  # the text test, in numpy
        for k in np.flatnonzero(texts.counts()).tolist():  # the media test, for the rows holding a question
            item = good[k]
            try:
                found = _media_matches(item, texts[k], index, images, videos)
            except OSError:
                report.media_missing += 1
                report.rows_checked -= 1
                continue
            report.rows_text_match += 1
            for i in found:
                report.n_hits += 1
                if len(report.hits) < SHOWN_HITS:
                    rec = index.records[i]
                    report.hits.append(Hit(where(item.file, item.row), item.source, rec.where, rec.source, rec.shown))
    bar.close()
    report.files_hashed, report.images_decoded, report.seconds = videos.hashed, images.decoded, time.time() - start
    if index.skipped:
        report.first_bench_skipped = index.first_skipped
    return report


def _readable(benches: list, data) -> list:
    """The benches as sources whose files exist and open; EvalSetError naming the first that does not."""
    out = []
    for bench in benches:
        try:
            spec = resolve_spec(resolve_bench(bench, data), data)
            for path in spec.file_paths(data):
                with open(path, "rb") as fh:
                    fh.read(1)
        except (OSError, RegistryError, ValueError) as exc:
            raise EvalSetError(f"decontamination: evaluation set {bench!r} cannot be read: {exc}") from None
        out.append(spec)
    return out


def check(data, mix, progress: bool = True) -> DecontamReport | None:
    """The trainers' check, before the model loads: every source of ``mix`` against ``data.decontaminate_against``
    under ``data.decontaminate``. ``error``: ContaminationError naming the contaminated rows (exit 1), EvalSetError
    when the evaluation set is not named, missing, unreadable or has unreadable rows (exit 2); ``warn``: both
    logged, a report returned (``not_checked`` says why when nothing was checked); ``off``: None, nothing read."""
    mode = data.decontaminate
    if mode == "off":
        log.info("decontamination: off (data.decontaminate=off): no evaluation set read")
        return None
    sources = [s for g in mix.groups.values() for s in g.sources]
    if not sources:
        return None
    benches = list(data.decontaminate_against or [])
    report = None
    try:
        if not benches:
            raise EvalSetError("decontamination: no evaluation set to check the training data against "
                               "(data.decontaminate_against is empty and eval.bench is null)")
        specs = _readable(benches, data)
        report = scan(sources, specs, data, progress)
        if report.bench_skipped:
            raise EvalSetError(f"decontamination: {report.bench_skipped} row(s) of the evaluation set cannot be read, "
                               f"so they were not checked; first: {report.first_bench_skipped}")
    except EvalSetError as exc:
        if mode == "error":
            raise EvalSetError(f"{exc}. Name a readable one with data.decontaminate_against=[...], or set "
                               "data.decontaminate=warn (check what can be read) or off") from None
        log.warning("%s (data.decontaminate=warn: training anyway)", exc)
        if report is not None:
            report.not_checked = str(exc)
            return report
        return DecontamReport(sources=sources, benches=[str(b) for b in benches], not_checked=str(exc))
    if not report.n_hits:
        log.info("%s", report.summary())
        return report
    if mode == "error":
        raise ContaminationError(f"{report.message()}. {report.summary()}. Remove those rows from the training "
                                 "data, or set data.decontaminate=warn to train anyway")
    log.warning("%s (data.decontaminate=warn: training anyway). %s", report.message(), report.summary())
    return report


def run_record(data, report: DecontamReport | None) -> dict:
    """What run_info.json keeps about the check: mode, whether anything was checked (and why not), the evaluation
    files, training rows, bench records, hits, thresholds."""
    out = {"mode": data.decontaminate, "checked": report is not None and not report.not_checked}
    if report is None:
        out["reason"] = "data.decontaminate=off" if data.decontaminate == "off" else "the mix has no sources"
        return out
    if report.not_checked:
        out["reason"] = report.not_checked
    out.update(files=report.bench_files, benches=report.benches, bench_records=report.bench_records,
               bench_skipped=report.bench_skipped, sources=report.sources, rows_checked=report.rows_checked,
               rows_unreadable=report.rows_unreadable, media_missing=report.media_missing, hits=report.n_hits,
               hit_rows=[f"{h.train} = {h.bench}" for h in report.hits], thresholds=report.thresholds,
               seconds=round(report.seconds, 3))
    return out
