"""The mid-training benchmark: a ``transformers.TrainerCallback`` for the SFT and GRPO trainers.

When: before the first step (``eval.at_start``), every ``eval.every_steps`` optimizer steps, and
after the last step (``eval.at_end``); a step is never evaluated twice. Every rank takes part
(generation is collective under ZeRO-3); rank 0 writes ``<output_dir>/eval/step_<N>/``. With
``eval.final_protocol`` (e.g. ``paper``), the trained model is evaluated once more at the end with that
protocol's preset and the result written to ``<output_dir>/eval/final/`` (the sweep report's row).

Where the numbers go: the trainer's loggers (tensorboard, wandb, ... through the callback handler's
``on_log``, as ``Trainer.log`` does, so they show up as ``train/bench/...`` there), the trainer
state's ``log_history``, and ``<output_dir>/metrics.jsonl`` (unless another callback of the trainer
writes that file: it declares ``writes_metrics_jsonl = True`` and receives the same ``on_log``).

Usage (both trainers)::

    cb = attach_bench_eval(trainer, recipe.eval, recipe.data, processor=processor,
                           report_to=recipe.train.report_to, model_name=recipe.model.name_or_path,
                           judge=recipe.reward.judge)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from eval_hooks import distributed as D
from eval_hooks import layout, protocol
from eval_hooks.evaluator import BenchEvaluator, EvalResult
from eval_hooks.io import append_jsonl, atomic_write_json
from eval_hooks.lmms import LmmsEvalLauncher

log = logging.getLogger(__name__)


step_dir = layout.eval_dir  # <output_dir>/eval/step_<N> (or eval/final for step="final")


class BenchEvalCallback(TrainerCallback):
    """Evaluates the model being trained on the fixed SpatialTree-Bench subset (see module doc)."""

    def __init__(self, eval_cfg: Any, data_cfg: Any, output_dir: str | Path, processor: Any = None,
                 report_to: Any = ("jsonl",), model_name: str = "", judge: Any = None):
        self.cfg = eval_cfg
        self.output_dir = Path(output_dir)
        self.processor = processor
        self.report_to = list(report_to or [])
        self.evaluator = BenchEvaluator(eval_cfg, data_cfg, model_name=model_name, judge=judge)
        final_cfg = protocol.final_config(self.evaluator.cfg)
        self.final = None if final_cfg is None else BenchEvaluator(final_cfg, data_cfg, model_name=model_name,
                                                                   judge=judge)
        """The extra evaluation after training (``eval.final_protocol``), written to eval/final."""
        self.final_result: EvalResult | None = None
        self.lmms = LmmsEvalLauncher(eval_cfg, self.output_dir) if eval_cfg.lmms_eval_tasks else None
        self.trainer: Any = None
        self.results: list[EvalResult] = []
        self.eval_seconds_total = 0.0
        self.run_start: float | None = None
        self._done_steps: set[int] = set()

    # ------------------------------------------------------------------ wiring
    def attach(self, trainer: Any) -> BenchEvalCallback:
        """Add this callback to ``trainer`` and keep a handle on it (its loggers and model)."""
        self.trainer = trainer
        if self.processor is None:
            self.processor = getattr(trainer, "processing_class", None)
        trainer.add_callback(self)
        return self

    # ------------------------------------------------------------------ events
    def on_train_begin(self, args, state, control, model=None, processing_class=None, **kwargs):
        self.run_start = time.perf_counter()
        if self.cfg.at_start:
            self._maybe_evaluate(args, state, control, model, processing_class, skip_if_written=True)

    def on_step_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        step = state.global_step
        periodic = self.cfg.every_steps > 0 and step % self.cfg.every_steps == 0
        last = self.cfg.at_end and state.max_steps > 0 and step >= state.max_steps
        if periodic or last:
            self._maybe_evaluate(args, state, control, model, processing_class)

    def on_save(self, args, state, control, **kwargs):
        if self.lmms is not None and state.is_world_process_zero:
            self.lmms.launch(Path(args.output_dir) / f"checkpoint-{state.global_step}", f"step_{state.global_step}")

    def final_model_saved(self, path: str | Path, is_main_process: bool = True) -> None:
        """Call after the final model is written (trainers save it after ``train()`` returns): lmms-eval on it."""
        if self.lmms is not None and is_main_process:
            self.lmms.launch(path, "final")

    def on_train_end(self, args, state, control, model=None, processing_class=None, **kwargs):
        if self.cfg.at_end:  # training stopped before max_steps (early stop, epochs): evaluate where it is
            self._maybe_evaluate(args, state, control, model, processing_class)
        if self.final is not None:
            self._final_evaluate(args, state, control, model, processing_class)
        if state.is_world_process_zero:
            self._write_timing()

    # ------------------------------------------------------------------ work
    def _preempted(self) -> bool:
        """True when the run is being pre-empted (the project's Preemption callback has ``triggered`` set):
        the checkpoint must be written before the grace period ends, so no evaluation then."""
        handler = getattr(self.trainer, "callback_handler", None)
        return any(getattr(cb, "triggered", False) is True for cb in getattr(handler, "callbacks", ()))

    def _maybe_evaluate(self, args, state, control, model, processing_class, skip_if_written: bool = False) -> None:
        step = state.global_step
        if step in self._done_steps:
            return
        if self._preempted():
            log.warning("bench eval: run pre-empted at step %d; not evaluating (the resumed run will)", step)
            return
        out = step_dir(self.output_dir, step)
        if skip_if_written and step > 0 and (out / layout.SUMMARY_JSON).is_file():
            log.info("bench eval: %s exists (resumed run); not evaluating step %d again", out, step)
            self._done_steps.add(step)
            return
        model = self.trainer.model if self.trainer is not None else model
        processor = self.processor if self.processor is not None else processing_class
        if model is None or processor is None:
            raise RuntimeError("BenchEvalCallback needs the model and the processor: use attach(trainer)")
        with D.generation_model(self.trainer, model, self.cfg.zero3_gather_params) as gen_model:
            result = self.evaluator.evaluate(gen_model, processor, out, step)
        self._done_steps.add(step)
        self.results.append(result)
        self.eval_seconds_total += result.seconds
        elapsed = time.perf_counter() - (self.run_start or time.perf_counter())
        logs = dict(result.metrics)
        logs["bench/eval_seconds_total"] = self.eval_seconds_total
        logs["bench/eval_time_share"] = self.eval_seconds_total / elapsed if elapsed > 0 else 1.0
        self._log(args, state, control, logs)
        if "wandb" in self.report_to and state.is_world_process_zero and result.records:
            from eval_hooks.wandb_tables import log_samples

            log_samples(result.records, step)

    def _final_evaluate(self, args, state, control, model, processing_class) -> None:
        """``eval.final_protocol``'s evaluation of the trained model into eval/final; its metrics are logged as
        ``bench_final/...`` (the learning curve ``bench/...`` keeps one protocol)."""
        out = step_dir(self.output_dir, "final")
        if self._preempted():
            log.warning("bench eval: run pre-empted; no final evaluation (the resumed run will make it)")
            return
        if (out / layout.SUMMARY_JSON).is_file():
            log.info("bench eval: %s exists; not evaluating again", out)
            return
        model = self.trainer.model if self.trainer is not None else model
        processor = self.processor if self.processor is not None else processing_class
        log.info("bench eval: final evaluation with eval.final_protocol=%s -> %s", self.final.cfg.protocol, out)
        with D.generation_model(self.trainer, model, self.cfg.zero3_gather_params) as gen_model:
            result = self.final.evaluate(gen_model, processor, out, "final")
        self.final_result = result
        self.eval_seconds_total += result.seconds
        logs = {k.replace("bench/", "bench_final/", 1): v for k, v in result.metrics.items()}
        self._log(args, state, control, logs)

    def _log(self, args, state, control, logs: dict[str, float]) -> None:
        if state.epoch is not None:
            logs["epoch"] = state.epoch
        state.log_history.append({**logs, "step": state.global_step})
        handler = getattr(self.trainer, "callback_handler", None)
        if handler is not None:
            handler.on_log(args, state, control, logs)
        if state.is_world_process_zero and "jsonl" in self.report_to and not self._jsonl_elsewhere():
            append_jsonl(self.output_dir / layout.METRICS_JSONL, {"step": state.global_step, **logs})

    def _jsonl_elsewhere(self) -> bool:
        handler = getattr(self.trainer, "callback_handler", None)
        return any(getattr(cb, "writes_metrics_jsonl", False) for cb in getattr(handler, "callbacks", ()))

    def timing(self) -> dict[str, Any]:
        """Wall time of the evaluations and their share of the run so far."""
        elapsed = time.perf_counter() - self.run_start if self.run_start is not None else 0.0
        return {"eval_seconds_total": round(self.eval_seconds_total, 3), "run_seconds": round(elapsed, 3),
                "eval_time_share": self.eval_seconds_total / elapsed if elapsed > 0 else None,
                "evaluations": [{"step": r.step, "seconds": round(r.seconds, 3)}
                                for r in self.results + ([self.final_result] if self.final_result else [])]}

    def _write_timing(self) -> None:
        timing = self.timing()
        atomic_write_json(self.output_dir / layout.EVAL_DIR / "timing.json", timing)
        if timing["eval_time_share"] is not None:
            log.info("bench eval: %d evaluations, %.1f s, %.1f%% of the run", len(self.results),
                     timing["eval_seconds_total"], 100 * timing["eval_time_share"])


def attach_bench_eval(trainer: Any, eval_cfg: Any, data_cfg: Any, output_dir: str | Path | None = None,
                      processor: Any = None, report_to: Any = ("jsonl",), model_name: str = "",
                      judge: Any = None) -> BenchEvalCallback | None:
    """Build the callback from the recipe sections and attach it; None when ``eval.bench`` is null
    or nothing would ever be evaluated. ``judge``: ``recipe.reward.judge`` (for ``gpteval`` records)."""
    if eval_cfg.bench is None:
        log.info("bench eval: eval.bench is null; no mid-training evaluation")
        return None
    if not (eval_cfg.at_start or eval_cfg.at_end or eval_cfg.every_steps > 0 or eval_cfg.final_protocol) \
            and not eval_cfg.lmms_eval_tasks:
        return None
    out = Path(output_dir if output_dir is not None else trainer.args.output_dir)
    cb = BenchEvalCallback(eval_cfg, data_cfg, out, processor=processor, report_to=report_to, model_name=model_name,
                           judge=judge)
    for evaluator in (cb.evaluator, cb.final):  # read the bench now: a missing judge stops the run at its start
        if evaluator is not None:
            _ = evaluator.subset
    return cb.attach(trainer)
