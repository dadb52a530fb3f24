"""Progress inside a GRPO step: one line at least every ``every`` seconds while rollouts are generated.

A GRPO step on a CPU (or a long-completion step on a GPU) spends minutes in ``generate`` while the Trainer's bar
stays at 0/N. :func:`install` wraps the policy's ``generate`` (the call TRL makes through
``unwrap_model_for_generation``): while it runs, a daemon thread prints (rank 0 only)

    GRPO step 3: generating 16 completions (8 prompts x 2): 96 new tokens (6 per completion, max 256), 20 s

counting decoding steps with a forward pre-hook on the model (one forward call = one new token per sequence).
Nothing changes what is generated.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any


class GenerationProgress:
    """Counts the model's forward calls during one ``generate`` and prints a line every ``every`` seconds."""

    def __init__(self, every: float = 10.0, out=None, step_fn=lambda: None, group: int = 1, max_new: int | None = None):
        self.every, self.out, self.step_fn, self.group, self.max_new = every, out or sys.stdout, step_fn, group, max_new
        self.active = False
        self.calls = 0
        self.batch = 0
        self.started = 0.0
        self._stop = threading.Event()
        self.lines: list[str] = []

    def pre_hook(self, module, args, kwargs):
        if self.active:
            self.calls += 1
        return None

    def line(self) -> str:
        per = self.calls
        step = self.step_fn()
        head = f"GRPO step {step}: " if step is not None else "GRPO: "
        prompts = f" ({self.batch // self.group} prompts x {self.group})" if self.group > 1 and self.batch else ""
        cap = f", max {self.max_new}" if self.max_new else ""
        return (f"{head}generating {self.batch} completions{prompts}: {per * self.batch} new tokens "
                f"({per} per completion{cap}), {time.monotonic() - self.started:.0f} s")

    def _tick(self) -> None:
        while not self._stop.wait(self.every):
            text = self.line()
            self.lines.append(text)
            print(text, file=self.out, flush=True)

    def run(self, generate, *args, **kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.batch = int(ids.shape[0]) if hasattr(ids, "shape") else 0
        self.calls, self.started, self.active = 0, time.monotonic(), True
        self._stop.clear()
        ticker = threading.Thread(target=self._tick, name="grpo-generation-progress", daemon=True)
        ticker.start()
        try:
            return generate(*args, **kwargs)
        finally:
            self.active = False
            self._stop.set()
            ticker.join(timeout=1)
            if self.lines and time.monotonic() - self.started >= self.every:
                done = self.line().replace("generating", "generated", 1)
                self.lines.append(done)
                print(done, file=self.out, flush=True)


def install(model: Any, every: float = 10.0, rank: int = 0, step_fn=lambda: None, group: int = 1,
            max_new: int | None = None, out=None) -> GenerationProgress | None:
    """Wrap ``model.generate`` with a :class:`GenerationProgress` (rank 0 only; other ranks stay quiet)."""
    if rank != 0 or every <= 0:
        return None
    progress = GenerationProgress(every=every, out=out, step_fn=step_fn, group=group, max_new=max_new)
    counted = model.get_base_model() if hasattr(model, "get_base_model") else model  # peft: the wrapped model runs
    counted.register_forward_pre_hook(progress.pre_hook, with_kwargs=True)
    inner = model.generate

    def generate(*args, **kwargs):
        return progress.run(inner, *args, **kwargs)

    model.generate = generate
    return progress


def install_on_trainer(trainer: Any, rank: int, every: float = 10.0) -> GenerationProgress | None:
    """:func:`install` on a TRL GRPOTrainer's policy, numbering lines with the step being made."""
    return install(trainer.model, every=every, rank=rank, step_fn=lambda: trainer.state.global_step + 1,
                   group=int(getattr(trainer, "num_generations", 1) or 1),
                   max_new=getattr(trainer.args, "max_completion_length", None))
