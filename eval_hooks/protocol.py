"""Named evaluation protocols: presets of the ``eval`` keys marked (protocol) in :mod:`eval_hooks.config`.

- ``quick`` (project choice): cheap enough to run every few hundred steps during training. Short generations
  cut think / auto-think replies off inside the reasoning, and a subset says little about one leaf: use it
  for curves, not for numbers compared with the paper.
- ``paper``: a score computed with the benchmark's released harness settings, for the final evaluation of a
  sweep row. The paper states no generation settings; the assumption (ours) is that its numbers come from
  the benchmark's own lmms-eval task. Sources
  (lmms-eval 0.7.3, the SpatialTree-Bench task the benchmark's authors publish):
  whole benchmark and reference-mode aggregation (``tasks/spatialtreebench/utils.py``,
  ``spatialtreebench_aggregate_results``: every record, a leaf without records counts 0); generation budget
  and sampling (``tasks/spatialtreebench/spatialtreebench.yaml``: ``max_new_tokens: 16000``,
  ``temperature: 0.5``, ``top_p: 1.0``; its ``do_sample: false`` is overridden by
  ``models/simple/qwen2_5_vl.py``, which sets ``do_sample = temperature > 0``); input sizes (that model's
  ``min_pixels``/``max_pixels``, JPEG re-encode and frame sampling: ``inputs: lmms_eval``, see
  :mod:`eval_hooks.inputs`); the Avg weighting that reproduces the paper's tables (``paper_table``, see
  ``rewards.taxonomy``); and the answer of a think / auto-think reply (``answer_extraction: auto``: project
  choice, the public scorer reads raw text, which is the same for replies without tags); the generation seed
  (``generation_seed: 1234``: lmms-eval's default ``--seed``). Project choices of ``paper``: ``repeats: 3``
  sampled passes (seeds 1234, 1235, 1236), because one pass at temperature 0.5 is one draw of a random score and
  the interval of a delta must include that noise (lmms-eval makes one pass); and batches of
  ``eval.batch_size`` prompts (lmms-eval's default is 1; left padding changes nothing for greedy decoding but a
  sampled pass draws its random numbers in a different order, so a pass is not token-identical to lmms-eval's).

The presets are filled in one place (:func:`resolve`, called by ``train.recipe.finalize``); explicit values
win, zeros and falses included.
"""

from __future__ import annotations

import dataclasses
from typing import Any

PROTOCOLS: dict[str, dict[str, Any]] = {
    "quick": {
        "max_samples_per_leaf": 16, "max_new_tokens": 64, "do_sample": False, "temperature": 1.0, "top_p": 1.0,
        "mode": "renormalize", "weights": "lmms_eval", "answer_extraction": "auto", "inputs": "training",
        "repeats": 1, "generation_seed": 0,
    },
    "paper": {
        "max_samples_per_leaf": 0, "max_new_tokens": 16000, "do_sample": True, "temperature": 0.5, "top_p": 1.0,
        "mode": "reference", "weights": "paper_table", "answer_extraction": "auto", "inputs": "lmms_eval",
        "repeats": 3, "generation_seed": 1234,
    },
}
"""Protocol name -> the values of the (protocol) keys."""


def _preset(name: str) -> dict[str, Any]:
    if name not in PROTOCOLS:
        raise ValueError(f"eval.protocol={name!r} is not one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


def resolve(cfg: Any) -> Any:
    """``cfg`` with every (protocol) key that is None filled from ``cfg.protocol``'s preset (a copy when anything
    changes; idempotent)."""
    fill = {k: v for k, v in _preset(cfg.protocol).items() if getattr(cfg, k) is None}
    return dataclasses.replace(cfg, **fill) if fill else cfg


def final_config(cfg: Any) -> Any | None:
    """The eval section of the extra evaluation after training (``eval.final_protocol``): the section with that
    protocol's preset forced over every (protocol) key; None when no final protocol is set."""
    if cfg.final_protocol is None:
        return None
    return dataclasses.replace(cfg, protocol=cfg.final_protocol, final_protocol=None, **_preset(cfg.final_protocol))


def settings(cfg: Any) -> dict[str, Any]:
    """The settings an evaluation ran with, for summary.json (what makes two scores comparable)."""
    keys = ("protocol", "max_samples_per_leaf", "seed", "max_new_tokens", "batch_size", "do_sample", "temperature",
            "top_p", "mode", "weights", "inputs", "judge", "prompt_template", "answer_extraction", "repeats",
            "generation_seed")
    return {k: getattr(cfg, k) for k in keys}
