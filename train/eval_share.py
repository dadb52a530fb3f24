"""Say early when the configured evaluations will take most of a run's time.

A 3-step SFT with the default start and end evaluations spends ~90% of its time evaluating; nothing said so.
:class:`EvalShare` measures the start evaluation (``eval.at_start``) and the first optimizer step, counts the
evaluations the recipe asks for, and after the first step prints one line (rank 0) when their estimated share of
the run passes :data:`THRESHOLD`. Without a start evaluation there is nothing measured to estimate from; it stays
quiet. Estimates only: the final evaluation under another protocol (``eval.final_protocol``) is not counted.

Before that, at launch (before any model loads), :func:`say_evaluation_plan` prints what the evaluations will cost
in counts: which passes run (start, every N steps, end, a final protocol), over how many records, the answers they
generate against the samples trained, and the ``eval.*`` keys that switch them off.
"""

from __future__ import annotations

import time
from typing import Any

from transformers import TrainerCallback

THRESHOLD = 0.25
"""Share of the run above which the line is printed (project choice)."""


def planned_evaluations(eval_cfg: Any, max_steps: int) -> int:
    """Evaluations the eval hook makes over ``max_steps`` steps (at start, every N steps, at the end; never twice)."""
    every = eval_cfg.every_steps if eval_cfg.every_steps > 0 else 0
    n = int(bool(eval_cfg.at_start)) + (max_steps // every if every else 0)
    if eval_cfg.at_end and not (every and max_steps % every == 0):
        n += 1
    return n


def share_line(evals: int, eval_s: float, steps: int, step_s: float, eval_cfg: Any) -> str | None:
    """The line to print, or None when the evaluations take at most THRESHOLD of the run."""
    total_eval, total_train = evals * eval_s, steps * step_s
    if total_eval + total_train <= 0 or total_eval / (total_eval + total_train) <= THRESHOLD:
        return None
    share = 100 * total_eval / (total_eval + total_train)
    return (f"note: evaluations will take about {share:.0f}% of this run's time (estimated: {evals} evaluations x "
            f"{eval_s:.1f} s vs {steps} steps x {step_s:.2f} s; eval.at_start={eval_cfg.at_start}, "
            f"eval.every_steps={eval_cfg.every_steps}, eval.at_end={eval_cfg.at_end}); a larger eval.every_steps, "
            "a smaller eval.max_samples_per_leaf or eval.at_start=false spends less")


class EvalShare(TrainerCallback):
    """Added after the bench callback (``bench``: its ``eval_seconds_total`` is read)."""

    def __init__(self, bench: Any, eval_cfg: Any, out=None):
        self.bench, self.cfg, self.out = bench, eval_cfg, out
        self.start_eval_s = 0.0
        self.step_begin = None
        self.done = False
        self.said: str | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start_eval_s = float(getattr(self.bench, "eval_seconds_total", 0.0) or 0.0)

    def on_step_begin(self, args, state, control, **kwargs):
        if self.step_begin is None:
            self.step_begin = (time.perf_counter(), float(getattr(self.bench, "eval_seconds_total", 0.0) or 0.0))

    def on_step_end(self, args, state, control, **kwargs):
        if self.done or self.step_begin is None:
            return
        self.done = True
        began, eval_before = self.step_begin
        in_evals = float(getattr(self.bench, "eval_seconds_total", 0.0) or 0.0) - eval_before
        step_s = max(time.perf_counter() - began - in_evals, 1e-6)
        if self.start_eval_s <= 0 or not state.is_world_process_zero:
            return
        self.said = share_line(planned_evaluations(self.cfg, state.max_steps), self.start_eval_s, state.max_steps,
                               step_s, self.cfg)
        if self.said:
            print(self.said, file=self.out, flush=True)


# ---------------------------------------------------------------------------- said at launch, before any model loads

def passes_text(cfg: Any, max_steps: int) -> str:
    """Which passes the eval hook makes over ``max_steps`` steps, with the keys that set them."""
    every = cfg.every_steps if cfg.every_steps > 0 else 0
    parts = ["at start (eval.at_start)"] if cfg.at_start else []
    if every and max_steps // every:  # a period longer than the run makes no pass: not mentioned
        parts.append(f"every {every} steps (eval.every_steps: {max_steps // every} in {max_steps} steps)")
    if cfg.at_end and not (every and max_steps % every == 0):
        parts.append("at the end (eval.at_end)")
    return ", ".join(parts)


def evaluation_plan(recipe: Any, max_steps: int, world: int = 1) -> str | None:
    """One line, said at launch: the evaluations the recipe asks for (which passes, over how many records, the final
    protocol's too), the records they generate against the samples the run trains on, and the keys that switch them
    off. When the evaluations generate at least as many answers as the run trains samples, it says that they will
    likely take most of the run's time (project choice: generating one answer costs about as much as one training
    sample; the measured share follows after the first step). None without an evaluation."""
    from eval_hooks import protocol
    from eval_hooks.evaluator import BenchEvaluator

    cfg = protocol.resolve(recipe.eval)
    if cfg.bench is None:
        return None
    runs = []  # (eval section, passes, what)
    if cfg.at_start or cfg.at_end or cfg.every_steps > 0:
        n = planned_evaluations(cfg, max_steps)
        runs.append((cfg, n, f"{n} pass(es) {passes_text(cfg, max_steps)}"))
    final = protocol.final_config(cfg)
    if final is not None:
        runs.append((final, 1, f"1 final pass under eval.final_protocol={cfg.final_protocol}"))
    if not runs or not sum(n for _, n, _ in runs):
        return None
    parts, generated = [], 0
    for section, n, what in runs:
        try:
            records = len(BenchEvaluator(section, recipe.data, judge=recipe.reward.judge).subset)
        except Exception as exc:  # an unreadable bench is reported by the evaluation itself when it runs
            parts.append(f"{what} over an unknown number of records ({type(exc).__name__})")
            continue
        repeats = max(1, int(getattr(section, "repeats", 1) or 1))
        per = f"{records} records" + (f" x {repeats} repeats" if repeats > 1 else "")
        parts.append(f"{what} over {per} of eval.bench={cfg.bench} (eval.max_samples_per_leaf="
                     f"{section.max_samples_per_leaf})")
        generated += n * records * repeats
    t = recipe.train
    trained = max_steps * t.per_device_batch_size * t.grad_accum * world
    verdict = ("evaluation will likely take most of this run's time" if generated >= trained else
               "the evaluations generate fewer answers than the run trains samples")
    return (f"evaluation plan: {'; '.join(parts)} = {generated} answers generated, against {max_steps} steps x "
            f"{trained // max(max_steps, 1)} = {trained} samples trained: {verdict}. Switch off: eval.at_start=false, "
            "eval.every_steps=0, eval.at_end=false" + (", eval.final_protocol=null" if recipe.eval.final_protocol
                                                       else "") + " (or eval.bench=null for none)")


def say_evaluation_plan(recipe: Any, max_steps: int, world: int = 1, out=None) -> str | None:
    """Print :func:`evaluation_plan` (call on rank 0 only); returns it."""
    line = evaluation_plan(recipe, max_steps, world)
    if line:
        print(line, file=out, flush=True)
    return line
