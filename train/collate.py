"""From a :class:`~data_mix.sample.Sample` to model inputs with assistant-only labels.

Each sample is rendered by the checkpoint's own chat template and run through the real processor
(which expands every image / video placeholder into its vision tokens). Labels keep only the
assistant turns, end-of-turn token included; which tokens mark an assistant turn is the model family's
answer (``assistant_labels`` in train/models/), so real checkpoints whose templates have no
``{% generation %}`` markers work too. System, user, image/video and padding tokens are -100.

A batch is either padded (one row per sample) or packed (:mod:`train.packing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from train.models.base import IGNORE_INDEX, span_labels

assistant_labels = span_labels  # labels after a header up to an end token (the families' shared helper)


class SampleEncodingError(ValueError):
    """A sample cannot be turned into model inputs; the message names its file, row and the reason."""


@dataclass
class Encoded:
    """One tokenized sample: 1-D token tensors plus its own vision inputs."""

    input_ids: torch.Tensor
    labels: torch.Tensor
    mm_token_type_ids: torch.Tensor
    vision: dict[str, torch.Tensor] = field(default_factory=dict)
    sample_id: str = ""

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])


def _load_media(sample, data_cfg) -> tuple[list, list]:
    """Images and videos (lists of frames) as PIL (data_mix.media)."""
    from data_mix.media import load_media

    return load_media(sample, data_cfg)


class SampleEncoder:
    """Turns Samples into :class:`Encoded` with the processor of the model being trained."""

    def __init__(self, processor, data_cfg, max_length: int | None = None, family=None):
        from train.models import family_for_processor

        self.processor = processor
        self.data_cfg = data_cfg
        self.max_length = data_cfg.max_length if max_length is None else max_length
        self.family = family_for_processor(processor) if family is None else family
        tok = processor.tokenizer
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id

    def processor_kwargs(self, images: list, videos: list) -> dict[str, Any]:
        """The processor call's media arguments (data_mix.media.processor_media_kwargs: the token counter uses
        the same, so counted == encoded)."""
        from data_mix.media import processor_media_kwargs

        return {"return_tensors": "pt", **processor_media_kwargs(images, videos, self.data_cfg.video_fps)}

    def encode(self, sample) -> Encoded:
        try:
            text = self.family.render_chat(self.processor, sample.messages)
            images, videos = _load_media(sample, self.data_cfg)
            out = self.processor(text=[text], **self.processor_kwargs(images, videos))
        except SampleEncodingError:
            raise
        except Exception as exc:
            raise SampleEncodingError(f"{sample.where}: cannot encode sample {sample.id!r}: {exc}") from exc
        input_ids = out["input_ids"][0]
        labels = self.family.assistant_labels(input_ids, self.processor.tokenizer)
        if len(input_ids) > self.max_length:
            raise SampleEncodingError(f"{sample.where}: sample {sample.id!r} has {len(input_ids)} tokens "
                                      f"(max {self.max_length}, data.max_length)")
        if not (labels != IGNORE_INDEX).any():
            raise SampleEncodingError(f"{sample.where}: sample {sample.id!r} has no assistant turn to learn")
        mm = out.get("mm_token_type_ids")
        mm = mm[0] if mm is not None else torch.zeros_like(input_ids)
        vision = {k: torch.as_tensor(out[k]) for k in self.family.vision_keys if k in out and out[k] is not None}
        return Encoded(input_ids=input_ids, labels=labels, mm_token_type_ids=mm, vision=vision, sample_id=sample.id)


def concat_vision(encoded: list[Encoded]) -> dict[str, torch.Tensor]:
    """Vision inputs of several samples, concatenated in order (the model scatters them in token order)."""
    out: dict[str, torch.Tensor] = {}
    keys = list(dict.fromkeys(k for e in encoded for k in e.vision))  # the family's order (Encoded.vision)
    for key in keys:
        parts = [e.vision[key] for e in encoded if key in e.vision]
        if parts:
            out[key] = torch.cat(parts, dim=0)
    return out


def pad_batch(encoded: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """One right-padded row per sample; the model computes its 3-D rope positions itself."""
    length = max(len(e) for e in encoded)
    n = len(encoded)
    input_ids = torch.full((n, length), pad_id, dtype=torch.long)
    labels = torch.full((n, length), IGNORE_INDEX, dtype=torch.long)
    attention_mask = torch.zeros((n, length), dtype=torch.long)
    mm = torch.zeros((n, length), dtype=torch.long)
    for i, e in enumerate(encoded):
        k = len(e)
        input_ids[i, :k] = e.input_ids
        labels[i, :k] = e.labels
        attention_mask[i, :k] = 1
        mm[i, :k] = e.mm_token_type_ids
    batch = {"input_ids": input_ids, "labels": labels, "attention_mask": attention_mask, "mm_token_type_ids": mm}
    batch.update(concat_vision(encoded))
    return batch


def batch_stats(batch: dict[str, torch.Tensor], n_samples: int) -> dict[str, float]:
    """Tokens that are real (not padding) and their share of the batch's positions."""
    if "attention_mask" in batch and batch["attention_mask"].ndim == 2:
        real = int(batch["attention_mask"].sum())
    else:
        real = int(batch["real_tokens"])
    total = int(batch["input_ids"].numel())
    return {"real_tokens": real, "total_tokens": total, "nonpad_fraction": real / max(total, 1),
            "samples": n_samples, "label_tokens": int((batch["labels"] != IGNORE_INDEX).sum())}
