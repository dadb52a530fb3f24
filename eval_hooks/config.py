"""The recipe's ``eval`` section. Plain dataclass; no heavy imports.

Keys marked "(protocol)" default to None and are filled from the named protocol's preset
(``eval.protocol``; presets in :mod:`eval_hooks.protocol`) by ``train.recipe.finalize``; a value the
recipe or the command line sets explicitly (an explicit 0 or false included) wins over the preset.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class EvalConfig:
    """Mid-training and offline SpatialTree-Bench evaluation."""

    bench: str | None = "spatialtree_bench"
    """Registry name or path of SpatialTree-Bench-format records; None disables evaluation."""
    protocol: str = "quick"
    """Named preset of the evaluation settings marked (protocol): ``quick`` (cheap, for the mid-training hook:
    16 records per leaf, 64 new tokens, greedy, renormalize, lmms_eval weights, training's input sizes) or
    ``paper`` (how a score comparable with the paper's tables is computed: the whole benchmark, lmms-eval's
    generation budget, sampling and input sizes, reference mode, paper_table weights). Explicit keys win."""
    final_protocol: str | None = None
    """A trainer's last evaluation again after training, with this protocol's preset (its keys forced, so the
    hook's cheap explicit values do not leak in), written to ``eval/final`` (the row ``launch/report.py``
    reads). None = no extra evaluation: the hook's last ``eval/step_N`` is the run's result."""
    every_steps: int = 0
    """Evaluate every N optimizer steps (plus step 0 and the end); 0 = only at step 0 and the end."""
    at_start: bool = True
    """Evaluate before the first step."""
    at_end: bool = True
    """Evaluate after the last step."""
    max_samples_per_leaf: int | None = None
    """(protocol) Fixed held-out subset: at most this many records per leaf (seeded choice); 0 = all."""
    max_new_tokens: int | None = None
    """(protocol) Generation length for evaluation."""
    batch_size: int = 16
    """Prompts per generate call (left padded)."""
    do_sample: bool | None = None
    """(protocol) Greedy (False) or sampled with ``temperature`` and ``top_p`` (True)."""
    temperature: float | None = None
    """(protocol) Sampling temperature when ``do_sample`` is true."""
    top_p: float | None = None
    """(protocol) Nucleus sampling when ``do_sample`` is true (1 = off). Sampling keys not set here (top_k,
    repetition_penalty) come from the checkpoint's generation_config.json, as in lmms-eval."""
    mode: str | None = None
    """(protocol) Aggregation: ``renormalize`` (a node averages children with samples) or ``reference`` (missing
    leaves count 0, as the public scorer does on the full benchmark)."""
    weights: str | None = None
    """(protocol) Named weighting of the tree (``rewards.taxonomy.WEIGHTINGS``): ``lmms_eval`` (the public scorer's
    weights, L2 Memory 1 : Underst. 1) or ``paper_table`` (L2 Underst. 0.70 / Memory 0.30: reproduces the Avg
    columns of the paper's tables). Written to summary.json and printed with every Avg."""
    inputs: str | None = None
    """(protocol) Image and video inputs: ``training`` (as training sees them: ``data.image_max_pixels`` etc.) or
    ``lmms_eval`` (as lmms-eval 0.7.3's wrapper for the model's family with the spatialtreebench task, e.g. for
    the paper's model JPEG re-encode, 256x28x28 to 1,605,632 pixels per image; a video as up to 32 frames given
    as images; see docs/EVAL.md and docs/MODELS.md)."""
    judge: str = "require"
    """Records scored by an LLM judge (``gpteval``) without ``reward.judge.base_url``: ``require`` = a one-line
    error at start; ``skip`` = they are not evaluated and their leaves are reported missing (never 0)."""
    zero3_gather_params: bool = True
    """Under DeepSpeed ZeRO-3, gather the full weights on every rank for the evaluation (fast generation; needs
    memory for one full copy of the model per device). False: layers are gathered one at a time inside
    ``generate`` with ``synced_gpus`` (lean, much slower)."""
    prompt_template: str | None = None
    """Ask every bench question through this template (``{question}`` = the record's prompt text), e.g. the GRPO
    template the model is trained with: ``eval.prompt_template: ${grpo.templates.auto_think}``. None = the
    benchmark's own prompt. A template that asks for ``<think>`` turns the chat template's thinking switch on, as
    GRPO does for its prompts (Qwen3.5: the prompt opens its think block; docs/MODELS.md)."""
    answer_extraction: str | None = None
    """(protocol) What the metric reads. ``auto``: a response holding an ``<answer>..</answer>`` block is scored on
    that block's content, and one with a closed ``<think>`` block but no answer block on the text after the last
    ``</think>`` -- exactly the span GRPO's accuracy reward scores (``rewards.parse_completion``); any other
    response (no tags) is scored on its raw text, as the public bench scorer does. ``none``: always the raw
    text (the reasoning too, which may name other options or numbers)."""
    seed: int = 0
    """Seed of the subset choice, so every evaluation of a run sees the same records."""
    repeats: int | None = None
    """(protocol) Passes over the subset: N > 1 generates every record N times (pass r sampled with seed
    ``generation_seed + r``), scores each, and summary.json reports the mean with a 95% interval over records and
    passes (eval_hooks/intervals.py). Greedy decoding gives N identical passes: use it with sampling. ``quick``: 1;
    ``paper``: 3 (project choice: the released task samples at temperature 0.5 and its scores move between runs)."""
    generation_seed: int | None = None
    """(protocol) Seed of sampled generation (pass r uses ``generation_seed + r``). ``quick``: 0; ``paper``: 1234,
    lmms-eval's default ``--seed`` (its random, numpy and torch seeds)."""
    lmms_eval_tasks: list[str] = field(default_factory=list)
    """Optional lmms-eval tasks (e.g. ``[spatialtreebench, vsibench]``) run on every saved checkpoint and by
    ``launch/evaluate.py`` in a separate process (training does not wait for it). ``make test`` runs lmms-eval 0.7.3's
    ``spatialtreebench`` for real on the tiny checkpoint and a local stand-in copy (tests/test_lmms_eval_run.py)."""
    lmms_eval_model: str = "auto"
    """lmms-eval model name (``--model``); ``auto``: the wrapper of the checkpoint's model family
    (docs/MODELS.md)."""
    lmms_eval_args: list[str] = field(default_factory=list)
    """Extra lmms-eval command-line arguments, e.g. ``["--limit", "100"]``."""
    lmms_eval_model_args: str = ""
    """Extra ``--model_args`` after ``pretrained=CHECKPOINT``, e.g. ``attn_implementation=flash_attention_2``."""
    lmms_eval_python: str | None = None
    """Python interpreter that has lmms-eval installed (it pins its own dependencies; a separate venv is
    usual); None = this interpreter."""
    lmms_eval_data: str | None = None
    """A local copy of the task data (``python -m eval_hooks.lmms_data BENCH DIR`` writes it in the layout the
    ``spatialtreebench`` task reads): the lmms-eval process gets ``HF_HOME=DIR`` and offline hub and datasets, so
    the released task reads those records and media instead of downloading the benchmark. None = lmms-eval
    downloads its datasets from the hub."""
    lmms_eval_devices: str | None = None
    """``CUDA_VISIBLE_DEVICES`` of the lmms-eval process (e.g. a spare GPU); None = inherit."""
    lmms_eval_max_running: int = 1
    """At most this many lmms-eval processes at once; a checkpoint saved while that many run is skipped (logged)."""
