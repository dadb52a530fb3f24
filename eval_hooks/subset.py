"""The fixed held-out subset: at most ``max_samples_per_leaf`` records per leaf, chosen with a seed.

Every evaluation of a run (and an offline evaluation with the same settings) sees exactly the same
records, so scores at different steps are comparable. Each leaf draws with its own generator seeded
by ``(seed, leaf)``: adding records of one leaf to the benchmark does not change another leaf's pick.
Records the hierarchy cannot place (no leaf tag) or cannot score (no metric) are counted and
reported in the summary, never dropped silently.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewards import taxonomy as tx
from rewards.answers import answer_problem

log = logging.getLogger(__name__)


@dataclass
class Subset:
    """The chosen records (tree order of leaves, file order within a leaf) and what was left out."""

    samples: list[Any]
    """Chosen samples (data_mix Sample objects)."""
    leaf_keys: list[str]
    """Taxonomy key of each chosen sample's leaf, aligned with ``samples``."""
    available: dict[str, int] = field(default_factory=dict)
    """Records per leaf key in the whole benchmark."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Records not usable, by reason (``no_leaf``, ``unknown_leaf``, ``no_metricfunc``, ``unscorable``: an unknown
    metric or an answer it cannot use, rewards/answers.py)."""

    def __len__(self) -> int:
        return len(self.samples)

    def counts(self) -> dict[str, int]:
        return dict(Counter(self.leaf_keys))


def _leaf_key(sample: Any) -> tuple[str | None, str | None]:
    """(leaf key, skip reason)."""
    if not getattr(sample, "leaf", None):
        return None, "no_leaf"
    try:
        return tx.leaf(sample.leaf).key, None
    except KeyError:
        return None, "unknown_leaf"


def select_subset(samples: Iterable[Any], max_per_leaf: int, seed: int) -> Subset:
    """Pick at most ``max_per_leaf`` samples per leaf (all of them when ``max_per_leaf`` <= 0)."""
    by_leaf: dict[str, list[Any]] = defaultdict(list)
    skipped: Counter = Counter()
    for sample in samples:
        key, reason = _leaf_key(sample)
        if reason is None and not getattr(sample, "metricfunc", None):
            reason = "no_metricfunc"
        if reason is None and answer_problem(sample.metricfunc, getattr(sample, "answer", None),
                                             getattr(sample, "metric_extra", None)):
            reason = "unscorable"  # an unknown metric or an answer it cannot use: never a silent 0
        if reason is not None:
            skipped[reason] += 1
            if skipped[reason] <= 3:
                log.warning("eval subset: skipping %s (%s)", getattr(sample, "where", sample), reason)
            continue
        by_leaf[key].append(sample)
    chosen, keys = [], []
    for leaf in tx.leaves():
        pool = by_leaf.get(leaf.key, [])
        if max_per_leaf > 0 and len(pool) > max_per_leaf:
            rng = random.Random(f"{seed}:{leaf.key}")
            picks = sorted(rng.sample(range(len(pool)), max_per_leaf))
            pool = [pool[i] for i in picks]
        chosen.extend(pool)
        keys.extend([leaf.key] * len(pool))
    if skipped:
        log.warning("eval subset: %d records skipped (%s)", sum(skipped.values()),
                    ", ".join(f"{k}: {v}" for k, v in sorted(skipped.items())))
    return Subset(samples=chosen, leaf_keys=keys, available={k: len(v) for k, v in by_leaf.items()},
                  skipped=dict(skipped))


def bench_source(bench: str, data_cfg: Any) -> Any:
    """What to hand ``data_mix.readers.read_source`` for ``eval.bench``.

    A name in the dataset registry is passed as is; a path to a bench file (JSONL, JSON, parquet, or a
    directory holding ``test.jsonl``) becomes an inline bench source whose media root is the file's folder.
    """
    from data_mix.registry import SourceSpec, load_registry

    registry = load_registry(data_cfg.registry)
    if bench in registry:
        return bench
    path = Path(bench).expanduser()
    if path.is_dir() and (path / "test.jsonl").is_file():
        path = path / "test.jsonl"
    if path.is_file():
        path = path.resolve()
        return SourceSpec(name=path.stem if path.stem != "test" else path.parent.name, format="bench",
                          files=[str(path)], media_root=str(path.parent))
    benches = [n for n in registry.names() if registry.get(n).format == "bench"]
    have = f"its bench sources: {', '.join(benches)}" if benches else "it has no bench-format source"
    raise FileNotFoundError(
        f"eval.bench={bench!r} is neither a dataset in the registry {registry.path} ({have}) nor an existing "
        "bench file (JSONL, JSON, parquet, or a folder with test.jsonl). Give eval.bench=<bench source or file>, "
        "or eval.bench=null to train without benchmark evaluation")
