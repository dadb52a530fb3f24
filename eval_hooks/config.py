"""The recipe's ``eval`` section. Plain dataclass; no heavy imports."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EvalConfig:
    """Mid-training and offline SpatialTree-Bench evaluation."""

    bench: str | None = "spatialtree_bench"
    """Registry name or path of SpatialTree-Bench-format records; None disables evaluation."""
    every_steps: int = 0
    """Evaluate every N optimizer steps (plus step 0 and the end); 0 = only at step 0 and the end."""
    at_start: bool = True
    """Evaluate before the first step."""
    at_end: bool = True
    """Evaluate after the last step."""
    max_samples_per_leaf: int = 16
    """Fixed held-out subset: at most this many records per leaf (seeded choice)."""
    max_new_tokens: int = 64
    """Generation length for evaluation."""
    batch_size: int = 16
    """Prompts per generate call (left padded)."""
    do_sample: bool = False
    """Greedy (False) or sampled with ``temperature`` (True)."""
    temperature: float = 1.0
    """Sampling temperature when ``do_sample`` is true."""
    mode: str = "renormalize"
    """Aggregation: ``renormalize`` (a node averages children with samples) or ``reference`` (missing leaves count 0)."""
    seed: int = 0
    """Seed of the subset choice, so every evaluation of a run sees the same records."""
    lmms_eval_tasks: list[str] = field(default_factory=list)
    """Optional lmms-eval tasks run on saved checkpoints in a separate process (not in CI)."""
