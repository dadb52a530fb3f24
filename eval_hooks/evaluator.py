"""One evaluation of a model on the fixed subset: shard, generate, score, gather, aggregate, write.

Used unchanged by the training callback (every ``eval.every_steps``) and by ``launch/evaluate.py``
(any checkpoint), so both produce the same numbers for the same checkpoint and subset.

Files (rank 0 only), in ``OUT_DIR`` = ``<run>/eval/step_<N>`` or ``<run>/eval/final``:
``predictions.jsonl`` (one line per record and pass (``repeat`` and ``seed`` when ``eval.repeats`` > 1): the raw
response, plus ``scored_text`` and ``answer_source``
when ``eval.answer_extraction`` had the metric read a part of it) then ``summary.json`` (the tree); each is written to a
temporary file and renamed, and summary.json is written last, so its presence means "complete". Every node of summary.json's tree has its
``score`` (mean over records, and over passes), ``ci95`` ([lo, hi], eval_hooks/intervals.py) and ``n`` (records).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from eval_hooks import distributed as D
from eval_hooks import layout, protocol
from eval_hooks.generation import GenerationSettings, generate
from eval_hooks.inputs import reader_data
from eval_hooks.intervals import INTERVAL_NOTE, mean_records, node_intervals
from eval_hooks.io import atomic_write_json, atomic_write_jsonl
from eval_hooks.judging import apply_judge_policy
from eval_hooks.scoring import extraction_metrics, extraction_summary, make_judge, score_response
from eval_hooks.subset import Subset, bench_source, select_subset
from eval_hooks.tree import SUMMARY_FORMAT, aggregate_records, metrics, tree_dict

log = logging.getLogger(__name__)


@dataclass
class EvalResult:
    """What one evaluation produced (the same on every rank)."""

    step: int | str
    metrics: dict[str, float]
    """Logger metrics: ``bench/overall``, ``bench/L1``, ... plus ``bench/eval_seconds``, ``bench/num_samples``,
    ``bench/answer_extracted_fraction`` and ``bench/answer_after_think_fraction``."""
    summary: dict[str, Any]
    out_dir: Path
    seconds: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    """Per-record results (rank 0 only; empty elsewhere)."""


def read_bench(eval_cfg: Any, data_cfg: Any) -> list[Any]:
    """Every record of ``eval.bench`` (data_mix readers; video frames kept whole for ``eval.inputs=lmms_eval``)."""
    from data_mix.readers import read_source

    data = reader_data(data_cfg, eval_cfg.inputs)
    return list(read_source(bench_source(eval_cfg.bench, data), data))


def load_subset(eval_cfg: Any, data_cfg: Any, records: list[Any] | None = None) -> Subset:
    """Pick the fixed subset of ``eval.bench`` (``records``: the bench already read)."""
    records = read_bench(eval_cfg, data_cfg) if records is None else records
    subset = select_subset(records, eval_cfg.max_samples_per_leaf, eval_cfg.seed)
    if not subset.samples:
        raise ValueError(f"eval.bench={eval_cfg.bench!r}: no record with a SpatialTree leaf and a metric "
                         f"(skipped: {subset.skipped or 'none'})")
    return subset


def evaluations(eval_cfg: Any) -> list[Any]:
    """The eval sections of the evaluations a run with ``eval_cfg`` makes: the hook's (or launch/evaluate.py's)
    when it evaluates at all, and the extra final one (``eval.final_protocol``)."""
    cfg = protocol.resolve(eval_cfg)
    if cfg.bench is None:
        return []
    out = [cfg] if (cfg.at_start or cfg.at_end or cfg.every_steps > 0) else []
    final = protocol.final_config(cfg)
    return out + ([final] if final is not None else [])


def check_judge_at_start(eval_cfg: Any, data_cfg: Any, judge: Any) -> None:
    """Raise :class:`~eval_hooks.judging.JudgeRequired` now (one line) when an evaluation of this run holds records
    scored by an LLM judge and none is configured (unless ``eval.judge=skip``). A bench that cannot be read is left
    to the evaluation itself, which reports it when it runs (as before this check existed)."""
    from data_mix.badsample import BadSample
    from eval_hooks.judging import JudgeRequired

    for cfg in evaluations(eval_cfg):
        try:
            _ = BenchEvaluator(cfg, data_cfg, judge=judge).subset
        except JudgeRequired:
            raise
        except (OSError, ValueError, KeyError, BadSample):
            return


class BenchEvaluator:
    """Evaluates models on one fixed subset; the subset is read once, on first use."""

    def __init__(self, eval_cfg: Any, data_cfg: Any, subset: Subset | None = None, model_name: str = "",
                 judge: Any = None, records: list[Any] | None = None):
        """``judge``: the ``gpteval`` judge (``rewards.JudgeConfig`` from ``recipe.reward.judge``, or a callable);
        ``records``: the bench already read (:func:`read_bench`), to share one read between evaluators."""
        self.cfg = protocol.resolve(eval_cfg)
        self.data_cfg = data_cfg
        self._subset = subset
        self._records = records
        self.model_name = model_name
        self.judge = make_judge(judge)
        self.judge_skipped: dict[str, int] = {}
        """Judged records left out per leaf key (``eval.judge=skip`` without a judge): those leaves are missing."""

    @property
    def subset(self) -> Subset:
        """The records evaluated; reading it checks the judge policy (:mod:`eval_hooks.judging`) first thing."""
        if self._subset is None:
            chosen = load_subset(self.cfg, self.data_cfg, self._records)
            self._subset, self.judge_skipped = apply_judge_policy(chosen, self.judge is not None, self.cfg.judge,
                                                                  self.cfg.bench)
            if not self._subset.samples:
                raise ValueError(f"eval.bench={self.cfg.bench!r}: every record needs an LLM judge and none is "
                                 "configured (reward.judge.base_url)")
            if self.judge_skipped:
                log.warning("bench eval: no LLM judge (eval.judge=skip): %d judged records not evaluated; leaves "
                            "reported missing: %s", sum(self.judge_skipped.values()), ", ".join(self.judge_skipped))
        return self._subset

    def evaluate(self, model: Any, processor: Any, out_dir: str | Path, step: int | str) -> EvalResult:
        """Run the evaluation on every rank (collective); files are written by rank 0."""
        start = time.perf_counter()
        subset = self.subset
        rank, world = D.rank_and_world()
        own = D.shard_indices(len(subset), rank, world)
        samples = [subset.samples[max(i, 0)] for i in own]  # padding (-1) repeats record 0; dropped below
        settings = GenerationSettings.from_eval_config(self.cfg, synced_gpus=world > 1 and D.is_zero3(model))
        mine = []
        for r, seed in enumerate(pass_seeds(self.cfg, settings.seed)):
            tag = f" pass {r + 1}/{self.cfg.repeats}" if self.cfg.repeats > 1 else ""
            progress = _progress(len(samples), f"bench eval (step {step}){tag}", disable=rank != 0)
            try:
                responses = generate(model, processor, samples, self.data_cfg,
                                     dataclasses.replace(settings, seed=seed), progress=progress)
            finally:
                progress.close()
            mine += [(r * len(subset) + i, self._record(subset, i, resp, r, seed))
                     for i, resp in zip(own, responses) if i >= 0]
        gathered = D.gather_to_rank0(mine)
        result = None
        if rank == 0:
            records = D.merge_shards(gathered, len(subset) * self.cfg.repeats)
            result = self._finish(records, Path(out_dir), step, start, world)
        if world == 1:
            return result
        shared = D.broadcast_from_rank0(None if result is None else dataclasses.replace(result, records=[]))
        return result if rank == 0 else shared

    def _record(self, subset: Subset, index: int, response: str, repeat: int = 0, seed: int = 0) -> dict[str, Any]:
        sample = subset.samples[index]
        scored = score_response(sample, response, judge=self.judge, extraction=self.cfg.answer_extraction)
        rec = {"id": sample.id, "leaf": subset.leaf_keys[index], "metricfunc": sample.metricfunc,
               "answer": sample.answer, "response": response, "score": scored["score"],
               "details": scored["details"], "where": sample.where, **media_refs(sample)}
        if self.cfg.repeats > 1:
            rec["repeat"], rec["seed"] = repeat, seed
        if scored["answer_source"] != "raw":  # the metric read a part of the response: say which
            rec["scored_text"], rec["answer_source"] = scored["scored_text"], scored["answer_source"]
        return rec

    def _finish(self, records: list[dict[str, Any]], out_dir: Path, step: int | str, start: float,
                world: int) -> EvalResult:
        agg = aggregate_records(mean_records(records), self.cfg.mode, self.cfg.weights, missing=self.judge_skipped)
        cis = node_intervals(records, self.cfg.mode, self.cfg.weights, missing=self.judge_skipped)
        n_records = len(records) // self.cfg.repeats
        extraction = extraction_summary(records, self.cfg.answer_extraction)
        if extraction.get("raw_with_answer_tag"):
            log.warning("bench eval: eval.answer_extraction=none, yet %d of %d responses hold an <answer> block; "
                        "their scores read the whole text, reasoning included (auto scores the answer block)",
                        extraction["raw_with_answer_tag"], len(records))
        atomic_write_jsonl(out_dir / "predictions.jsonl", records)
        seconds = time.perf_counter() - start
        summary = {
            "format": SUMMARY_FORMAT,
            "step": step,
            "protocol": self.cfg.protocol,
            "mode": self.cfg.mode,
            "weights": self.cfg.weights,
            "overall": agg.overall,
            "num_samples": n_records,
            "repeats": self.cfg.repeats,
            "pass_seeds": pass_seeds(self.cfg, GenerationSettings.from_eval_config(self.cfg).seed),
            "interval": INTERVAL_NOTE,
            "eval_seconds": round(seconds, 3),
            "world_size": world,
            "model": self.model_name,
            "bench": self.cfg.bench,
            "settings": protocol.settings(self.cfg),
            "available_per_leaf": self.subset.available,
            "skipped": self.subset.skipped,
            "judge": {"configured": self.judge is not None, "policy": self.cfg.judge,
                      "skipped_records": self.judge_skipped},
            "missing": sorted(agg.missing, key=lambda k: (k.count("/"), k)),
            "metric_errors": _errors(records),
            "answer_extraction": extraction,
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "tree": tree_dict(agg, intervals=cis),
        }
        atomic_write_json(out_dir / layout.SUMMARY_JSON, summary)
        found = metrics(agg)
        found["bench/eval_seconds"] = seconds
        found["bench/num_samples"] = float(n_records)
        found.update(extraction_metrics(extraction, len(records)))
        log.info("bench eval step %s: overall %s over %d records in %.1f s -> %s", step,
                 "n/a" if agg.overall is None else f"{100 * agg.overall:.1f} (%)", len(records), seconds, out_dir)
        return EvalResult(step=step, metrics=found, summary=summary, out_dir=out_dir, seconds=seconds,
                          records=records)


def pass_seeds(cfg: Any, first: int) -> list[int]:
    """The generation seed of each pass (``eval.repeats`` passes from ``eval.generation_seed``)."""
    return [first + r for r in range(max(1, int(cfg.repeats or 1)))]


def media_refs(sample: Any) -> dict[str, Any]:
    """The record's prompt text and media paths (references, not copies: the run page makes thumbnails of them);
    images embedded as bytes are left out."""
    prompt = "\n".join(p.get("text", "") for m in sample.messages if m.get("role") == "user"
                       for p in (m.get("content") if isinstance(m.get("content"), list) else [])
                       if isinstance(p, dict) and p.get("type") == "text")
    return {"prompt": prompt, "images": [i for i in sample.images if isinstance(i, str)],
            "videos": [v for v in sample.videos if isinstance(v, (str, list))]}


def _errors(records: list[dict[str, Any]]) -> dict[str, int]:
    """Records whose metric reported an error (no judge, unknown metric), by metric."""
    out: dict[str, int] = {}
    for rec in records:
        if isinstance(rec.get("details"), dict) and "error" in rec["details"]:
            out[rec["metricfunc"]] = out.get(rec["metricfunc"], 0) + 1
    return out


def _progress(total: int, desc: str, disable: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=disable, leave=False)
