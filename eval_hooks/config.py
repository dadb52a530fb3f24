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
    zero3_gather_params: bool = True
    """Under DeepSpeed ZeRO-3, gather the full weights on every rank for the evaluation (fast generation; needs
    memory for one full copy of the model per device). False: layers are gathered one at a time inside
    ``generate`` with ``synced_gpus`` (lean, much slower)."""
    prompt_template: str | None = None
    """Ask every bench question through this template (``{question}`` = the record's prompt text), e.g. the GRPO
    template the model is trained with: ``eval.prompt_template: ${grpo.templates.auto_think}``. None = the
    benchmark's own prompt."""
    answer_extraction: str = "auto"
    """What the metric reads. ``auto``: a response holding an ``<answer>..</answer>`` block is scored on that
    block's content, and one with a closed ``<think>`` block but no answer block on the text after the last
    ``</think>`` -- exactly the span GRPO's accuracy reward scores (``rewards.parse_completion``); any other
    response (no tags) is scored on its raw text, as the public bench scorer does. ``none``: always the raw
    text (the reasoning too, which may name other options or numbers)."""
    seed: int = 0
    """Seed of the subset choice, so every evaluation of a run sees the same records."""
    lmms_eval_tasks: list[str] = field(default_factory=list)
    """Optional lmms-eval tasks (e.g. ``[spatialtreebench, vsibench]``) run on every saved checkpoint and by
    ``launch/evaluate.py`` in a separate process (training does not wait for it). Not run in CI."""
    lmms_eval_model: str = "auto"
    """lmms-eval model name (``--model``); ``auto`` picks it from the checkpoint's ``model_type``
    (qwen2_vl, qwen2_5_vl, qwen3_vl)."""
    lmms_eval_args: list[str] = field(default_factory=list)
    """Extra lmms-eval command-line arguments, e.g. ``["--limit", "100"]``."""
    lmms_eval_model_args: str = ""
    """Extra ``--model_args`` after ``pretrained=CHECKPOINT``, e.g. ``attn_implementation=flash_attention_2``."""
    lmms_eval_python: str | None = None
    """Python interpreter that has lmms-eval installed (it pins its own dependencies; a separate venv is
    usual); None = this interpreter."""
    lmms_eval_devices: str | None = None
    """``CUDA_VISIBLE_DEVICES`` of the lmms-eval process (e.g. a spare GPU); None = inherit."""
    lmms_eval_max_running: int = 1
    """At most this many lmms-eval processes at once; a checkpoint saved while that many run is skipped (logged)."""
