"""Samples -> the prompt dataset TRL's GRPOTrainer reads, checked at load time.

Every prompt is built, its media loaded and its length counted (template text and image tokens
included) BEFORE training starts. A prompt longer than ``grpo.max_prompt_length`` is a bad sample
(``too_long``), reported with its file and row: it is never truncated, so the "image features and
image tokens do not match" crash of a prompt whose image tokens were cut cannot happen mid-run.

The dataset stores paths and JSON; images are decoded on access (``set_transform``), so a large
prompt set costs little memory. Reward functions receive every column as a keyword list: ``metricfunc``,
``answer``, ``metric_extra``, ``question_type``, ``level``, ``ability``, ``leaf``, ``task``, ``source``, ``id``.

The reward section is checked against the prompts here too, before any model loads: gpteval prompts
without a judge (``reward.judge.missing``), non-MCQ prompts under ``reward.accuracy=mcq_only`` (left out,
counted) and ``reward.tasks`` keys that match no prompt.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from data_mix.badsample import BadSample, BadSampleTracker
from data_mix.sample import Sample
from rewards.answers import answer_problem
from rewards.metrics import is_mcq, needs_judge
from rewards.shaping import task_override, unmatched_task_keys
from train.grpo.prompts import PromptError, build_prompt, count_media_parts, template_for
from train.models import thinking_for

if TYPE_CHECKING:
    from train.config import Recipe

log = logging.getLogger(__name__)

# Columns handed to reward functions besides prompt/images (the rewards package routes on them).
REWARD_COLUMNS = ("id", "source", "where", "level", "ability", "leaf", "task", "metricfunc", "answer",
                  "metric_extra", "question_type")


def task_type(sample: Sample) -> str | None:
    """The record's task type (``extra_info.task`` of a bench record, e.g. the engine's ``distance``), or None."""
    info = sample.meta.get("extra_info") if isinstance(sample.meta, dict) else None
    task = info.get("task") if isinstance(info, dict) else None
    return str(task) if task not in (None, "") else None


class GRPODataError(ValueError):
    """The recipe's data cannot make a GRPO prompt set; the message names the sample or key and why."""


@dataclass
class PromptRow:
    """One checked GRPO prompt (JSON-friendly; images by path)."""

    sample: Sample
    prompt: list[dict[str, Any]]
    prompt_tokens: int
    image_tokens: int
    image_sizes: list[tuple[int, int]] = field(default_factory=list)
    """(height, width) the processor resizes each image to (empty when the processor does not say): the verl
    export hands these to qwen-vl-utils so that verl sees each image at the size counted here."""

    def to_record(self) -> dict[str, Any]:
        s = self.sample
        return {
            "prompt_json": json.dumps(self.prompt, ensure_ascii=False),
            "image_paths": list(s.images),
            "id": s.id, "source": s.source, "where": s.where,
            "level": s.level, "ability": s.ability, "leaf": s.leaf, "task": task_type(s),
            "metricfunc": s.metricfunc, "question_type": s.question_type,
            "answer_json": json.dumps(s.answer, ensure_ascii=False),
            "metric_extra_json": json.dumps(s.metric_extra, ensure_ascii=False),
            "prompt_tokens": self.prompt_tokens,
        }


@dataclass
class PromptSet:
    """The checked prompts plus what loading them found."""

    rows: list[PromptRow]
    skipped: BadSampleTracker
    levels: Counter = field(default_factory=Counter)
    sources: Counter = field(default_factory=Counter)
    filtered_out: int = 0
    """Samples left out by ``grpo.levels``."""
    not_mcq: Counter = field(default_factory=Counter)
    """Samples left out by ``reward.accuracy=mcq_only``, per metricfunc."""
    no_judge: Counter = field(default_factory=Counter)
    """gpteval samples left out by ``reward.judge.missing=drop``, per leaf."""
    task_overrides: Counter = field(default_factory=Counter)
    """Prompts per ``reward.tasks`` key that shapes them."""

    @property
    def max_prompt_tokens(self) -> int:
        return max((r.prompt_tokens for r in self.rows), default=0)

    def summary(self) -> str:
        lv = ", ".join(f"{k}: {v}" for k, v in sorted(self.levels.items(), key=lambda kv: str(kv[0])))
        src = ", ".join(f"{k}: {v}" for k, v in sorted(self.sources.items()))
        text = (f"{len(self.rows)} GRPO prompts (levels {lv}; sources {src}); longest prompt "
                f"{self.max_prompt_tokens} tokens; {self.filtered_out} outside grpo.levels; "
                f"bad samples: {self.skipped.summary()}")
        if self.not_mcq:
            text += (f"; {sum(self.not_mcq.values())} not multiple choice, left out by reward.accuracy=mcq_only "
                     f"({_counts(self.not_mcq)})")
        if self.no_judge:
            text += (f"; {sum(self.no_judge.values())} gpteval prompts left out for want of a judge "
                     f"(reward.judge.missing=drop; {_counts(self.no_judge)})")
        if self.task_overrides:
            text += f"; shaped by reward.tasks: {_counts(self.task_overrides)}"
        return text


def _counts(counter: Counter) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counter.items(), key=lambda kv: str(kv[0])))


def _no_judge_error(found: list[Sample]) -> GRPODataError:
    """One line naming the files, rows and leaves of gpteval prompts that have no judge, and the fixes."""
    by_file: dict[str, list[Sample]] = {}
    for s in found:
        by_file.setdefault(s.file or s.source, []).append(s)
    parts = []
    for file, samples in by_file.items():
        samples = sorted(samples, key=lambda s: s.row)
        rows = ", ".join(str(s.row + 1) for s in samples[:10]) + (" ..." if len(samples) > 10 else "")
        leaves = ", ".join(sorted({str(s.leaf) for s in samples}))
        parts.append(f"{file} rows {rows} (leaf {leaves})")
    return GRPODataError(
        f"{len(found)} GRPO prompts use metricfunc gpteval, which an LLM judge grades, but reward.judge.base_url is "
        f"not set, so their accuracy reward would be a silent 0: {'; '.join(parts)}. Configure reward.judge "
        "(docs/REWARDS.md), or drop these prompts: reward.judge.missing=drop (counted and reported), or leave "
        "their sources or levels out of the mix")


# ---------------------------------------------------------------------------- token counting

class PromptLengthCounter:
    """Counts a prompt's tokens exactly as the processor will see them (image tokens included).

    Fast path: the text through the tokenizer with one image placeholder per image, plus the processor's
    own image-token count for each image size (``_get_num_multimodal_tokens``, the API vLLM uses).
    Fallback (processors without it): the full processor on text and images.
    """

    def __init__(self, processor, thinking: bool = False):
        self.processor = processor
        self.thinking = thinking
        """The template's thinking switch, as TRL renders the prompts (``train.models.thinking_for``)."""
        self.tokenizer = getattr(processor, "tokenizer", processor)
        image_token = getattr(processor, "image_token", None)
        self.image_token_id = self.tokenizer.convert_tokens_to_ids(image_token) if image_token else None
        self.fast = self.image_token_id is not None and hasattr(processor, "_get_num_multimodal_tokens")

    def resized_sizes(self, images: list) -> list[tuple[int, int]]:
        """(height, width) the image processor resizes each image to (the model family's answer); [] when the
        family does not say."""
        if not images:
            return []
        from train.models import family_for_processor

        return family_for_processor(self.processor).resized_image_sizes(self.processor, images)

    def text(self, prompt: list[dict[str, Any]]) -> str:
        """The generation prompt as TRL renders it (the family's template arguments with :attr:`thinking`:
        train/grpo/trl_backend.py hands TRL the same ``chat_template_kwargs``)."""
        from train.models import render_chat

        return render_chat(self.processor, prompt, add_generation_prompt=True, thinking=self.thinking)

    def count(self, prompt: list[dict[str, Any]], images: list) -> tuple[int, int]:
        """(total prompt tokens, image tokens) of ``prompt`` with ``images`` (PIL, in placeholder order)."""
        text = self.text(prompt)
        if self.fast:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            pads = sum(1 for t in ids if t == self.image_token_id)
            if pads == len(images):
                if not images:
                    return len(ids), 0
                sizes = [(im.height, im.width) for im in images]
                per_image = self.processor._get_num_multimodal_tokens(image_sizes=sizes)["num_image_tokens"]
                image_tokens = int(sum(per_image))
                return len(ids) - pads + image_tokens, image_tokens
        out = self.processor(text=[text], images=images or None, return_tensors="np")
        n = int(out["input_ids"].shape[1])
        image_tokens = int((out["input_ids"][0] == self.image_token_id).sum()) if self.image_token_id is not None else 0
        return n, image_tokens


# ---------------------------------------------------------------------------- loading

def mix_samples(recipe: Recipe, tokenizer=None) -> Iterator[Sample]:
    """The recipe's mix (every source of every group, the planned budget), in mix order, on one process.

    Every rank reads the whole set: TRL's sampler shards prompts across processes itself.
    """
    from data_mix.mixer import build_mix

    if not recipe.mix.groups:
        raise GRPODataError("GRPO needs prompt sources: set mix.groups.<group>.sources, e.g. "
                            "mix.groups.rl.sources=[rl_l1,rl_l2,rl_l3,rl_l4] (bench-format registry sources)")
    from train.recipe import matched_mix

    mix = build_mix(recipe.data, recipe.mix, rank=0, world_size=1, tokenizer=tokenizer, match_mix=matched_mix(recipe))
    yield from mix


def check_sample(sample: Sample, template: str, counter: PromptLengthCounter, data_cfg, max_prompt_length: int,
                 backend: str = "trl") -> PromptRow:
    """Build and check one prompt; raise BadSample (file, row, reason) or GRPODataError."""
    from data_mix.media import load_media

    file, row = sample.file or sample.source, sample.row
    if not sample.metricfunc:
        raise BadSample(file, row, "bad_record", "no metricfunc: a GRPO prompt needs a verifiable answer "
                        "(use SpatialTree-Bench-format sources such as rl_l1..rl_l4)")
    problem = answer_problem(sample.metricfunc, sample.answer, sample.metric_extra)
    if problem:  # an unknown metric or an answer it cannot use: the accuracy reward would always be 0
        raise BadSample(file, row, "bad_record", problem)
    if sample.videos and backend == "trl":
        raise GRPODataError(f"{sample.where} ({sample.source}): has a video, and TRL's GRPOTrainer (1.16) takes "
                            "images only. Leave video sources out of the GRPO mix, give their frames as images, "
                            "or use grpo.backend=verl.")
    try:
        prompt = build_prompt(sample, template)
    except PromptError as exc:
        raise BadSample(file, row, "bad_record", str(exc)) from None
    parts = count_media_parts(prompt)
    if parts["image"] != len(sample.images) or parts["video"] != len(sample.videos):
        raise BadSample(file, row, "placeholder_mismatch",
                        f"{parts['image']} image / {parts['video']} video placeholders for "
                        f"{len(sample.images)} images / {len(sample.videos)} videos")
    images, _videos = load_media(sample, data_cfg)
    n, image_tokens = counter.count(prompt, images)
    if n > max_prompt_length:
        raise BadSample(file, row, "too_long",
                        f"prompt is {n} tokens ({image_tokens} of them image tokens, {len(images)} images) > "
                        f"grpo.max_prompt_length={max_prompt_length}; it is rejected rather than cut, because "
                        "cutting image tokens breaks the model's forward pass. Raise grpo.max_prompt_length or "
                        "lower data.image_max_pixels")
    return PromptRow(sample=sample, prompt=prompt, prompt_tokens=n, image_tokens=image_tokens,
                     image_sizes=counter.resized_sizes(images))


def load_prompts(recipe: Recipe, processor, samples: Iterable[Sample] | None = None, backend: str | None = None) -> PromptSet:
    """Check every prompt of the recipe's mix (or of ``samples``) under ``data.on_bad_sample``."""
    from tqdm.auto import tqdm

    grpo = recipe.grpo
    backend = backend or grpo.backend
    template = template_for(grpo.templates, grpo.prompt_mode)
    counter = PromptLengthCounter(processor, thinking=thinking_for(template))
    tracker = BadSampleTracker.from_config(recipe.data)
    keep_levels = set(grpo.levels)
    reward = recipe.reward
    judge_missing = not reward.judge.base_url
    no_judge: list[Sample] = []
    out = PromptSet(rows=[], skipped=tracker)
    source = samples if samples is not None else mix_samples(recipe, processor)
    for sample in tqdm(source, desc="GRPO prompts", unit="prompt", mininterval=2.0):
        if keep_levels and sample.level not in keep_levels:
            out.filtered_out += 1
            continue
        if sample.metricfunc and reward.accuracy == "mcq_only" and not is_mcq(sample.metricfunc):
            out.not_mcq[sample.metricfunc] += 1
            continue
        if needs_judge(sample.metricfunc) and judge_missing:
            if reward.judge.missing == "drop":
                out.no_judge[sample.leaf or "no leaf"] += 1
            else:
                no_judge.append(sample)
            continue
        try:
            row = check_sample(sample, template, counter, recipe.data, grpo.max_prompt_length, backend)
        except BadSample as exc:
            tracker.bad(exc)
            continue
        tracker.ok()
        out.rows.append(row)
        out.levels[sample.level] += 1
        out.sources[sample.source] += 1
        hit = task_override(reward, sample.leaf, task_type(sample))
        if hit is not None:
            out.task_overrides[hit[0]] += 1
    if no_judge:
        raise _no_judge_error(no_judge)
    if not out.rows:
        why = f" with grpo.levels={sorted(keep_levels)}" if keep_levels else ""
        left = f", {sum(out.not_mcq.values())} not multiple choice (reward.accuracy=mcq_only)" if out.not_mcq else ""
        left += f", {sum(out.no_judge.values())} gpteval without a judge" if out.no_judge else ""
        raise GRPODataError(f"no usable GRPO prompts{why}: {out.filtered_out} filtered out by level{left}, "
                            f"bad samples: {tracker.summary()}")
    unmatched = unmatched_task_keys(reward, {r.sample.leaf for r in out.rows}, {task_type(r.sample) for r in out.rows})
    if unmatched:
        raise GRPODataError("; ".join(unmatched))
    return out  # the caller prints out.summary() (once, rank 0)


# ---------------------------------------------------------------------------- the HF dataset

def _media_loader(data_cfg):
    from data_mix.media import load_media

    def load(row_id: str, source: str, paths: list[str]) -> list:
        images, _ = load_media(Sample(id=row_id, source=source, messages=[], images=list(paths)), data_cfg)
        return images

    return load


def to_hf_dataset(prompts: PromptSet, data_cfg):
    """A ``datasets.Dataset`` whose rows decode to TRL's GRPO format: ``prompt`` (chat messages with image
    placeholders), ``images`` (PIL, loaded on access) and the reward columns."""
    from datasets import Dataset

    records = [r.to_record() for r in prompts.rows]
    ds = Dataset.from_list(records)
    load = _media_loader(data_cfg)

    def decode(batch: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {}
        out["prompt"] = [json.loads(p) for p in batch["prompt_json"]]
        out["images"] = [load(i, s, p) for i, s, p in zip(batch["id"], batch["source"], batch["image_paths"])]
        out["answer"] = [json.loads(a) for a in batch["answer_json"]]
        out["metric_extra"] = [json.loads(m) for m in batch["metric_extra_json"]]
        for key in REWARD_COLUMNS:
            if key not in out:
                out[key] = batch[key]
        out["prompt_tokens"] = batch["prompt_tokens"]
        out["image_paths"] = batch["image_paths"]  # references for the rollout log (train/grpo/rollouts.py)
        return out

    ds.set_transform(decode)
    return ds
