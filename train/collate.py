"""From a :class:`~data_mix.sample.Sample` to model inputs with assistant-only labels.

Each sample is rendered by the checkpoint's own chat template and run through the real processor
(which expands every image / video placeholder into its vision tokens). Labels keep only the
assistant turns: every token after an ``<|im_start|>assistant\\n`` header up to and including its
``<|im_end|>``. System, user, image/video and padding tokens are -100. Matching the ChatML header on
token ids works for every Qwen-VL template (Qwen2-VL, Qwen2.5-VL, Qwen3-VL), including real
checkpoints whose templates have no ``{% generation %}`` markers.

A batch is either padded (one row per sample) or packed (:mod:`train.packing`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

IGNORE_INDEX = -100
# Processor outputs that are concatenated across samples (vision inputs), in sample order.
VISION_KEYS = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


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


def assistant_labels(input_ids: torch.Tensor, header: list[int], end_id: int) -> torch.Tensor:
    """Labels equal to ``input_ids`` inside assistant turns (after ``header`` up to ``end_id`` inclusive), else -100."""
    ids = input_ids.tolist()
    labels = [IGNORE_INDEX] * len(ids)
    n, h = len(ids), len(header)
    i = 0
    while i <= n - h:
        if ids[i:i + h] == header:
            j = i + h
            while j < n and ids[j] != end_id:
                labels[j] = ids[j]
                j += 1
            if j < n:
                labels[j] = ids[j]  # the end token is learned: it is how the model stops
            i = j + 1
        else:
            i += 1
    return torch.tensor(labels, dtype=torch.long)


class SampleEncoder:
    """Turns Samples into :class:`Encoded` with the processor of the model being trained."""

    def __init__(self, processor, data_cfg, max_length: int | None = None):
        self.processor = processor
        self.data_cfg = data_cfg
        self.max_length = data_cfg.max_length if max_length is None else max_length
        tok = processor.tokenizer
        self.header = tok("<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
        self.end_id = tok.convert_tokens_to_ids("<|im_end|>")
        self.pad_id = tok.pad_token_id if tok.pad_token_id is not None else self.end_id

    def processor_kwargs(self, images: list, videos: list) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"return_tensors": "pt"}
        if images:
            kwargs["images"] = images
        if videos:
            from transformers.video_utils import VideoMetadata

            # Frames arrive already sampled at data.video_fps: tell the processor so the temporal
            # rope spacing (second_per_grid_ts) is right, and do not sample again.
            kwargs["videos"] = videos
            kwargs["video_metadata"] = [VideoMetadata(total_num_frames=len(v), fps=self.data_cfg.video_fps)
                                        for v in videos]
            kwargs["do_sample_frames"] = False
        return kwargs

    def encode(self, sample) -> Encoded:
        try:
            text = self.processor.apply_chat_template(sample.messages, tokenize=False)
            images, videos = _load_media(sample, self.data_cfg)
            out = self.processor(text=[text], **self.processor_kwargs(images, videos))
        except SampleEncodingError:
            raise
        except Exception as exc:
            raise SampleEncodingError(f"{sample.where}: cannot encode sample {sample.id!r}: {exc}") from exc
        input_ids = out["input_ids"][0]
        labels = assistant_labels(input_ids, self.header, self.end_id)
        if len(input_ids) > self.max_length:
            raise SampleEncodingError(f"{sample.where}: sample {sample.id!r} has {len(input_ids)} tokens "
                                      f"(max {self.max_length}, data.max_length)")
        if not (labels != IGNORE_INDEX).any():
            raise SampleEncodingError(f"{sample.where}: sample {sample.id!r} has no assistant turn to learn")
        mm = out.get("mm_token_type_ids")
        mm = mm[0] if mm is not None else torch.zeros_like(input_ids)
        vision = {k: torch.as_tensor(out[k]) for k in VISION_KEYS if k in out and out[k] is not None}
        return Encoded(input_ids=input_ids, labels=labels, mm_token_type_ids=mm, vision=vision, sample_id=sample.id)


def concat_vision(encoded: list[Encoded]) -> dict[str, torch.Tensor]:
    """Vision inputs of several samples, concatenated in order (the model scatters them in token order)."""
    out: dict[str, torch.Tensor] = {}
    for key in VISION_KEYS:
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
