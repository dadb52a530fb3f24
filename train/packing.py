"""Multimodal packing: several samples share one row, each with its own positions, none seeing another.

What a packed batch holds (``train.packing: true``):
- ``input_ids`` / ``labels``: the samples' tokens laid end to end in rows of at most
  ``train.packing_max_length`` tokens (first-fit decreasing), padding only at a row's end;
- ``position_ids``: each sample's own position rows (the model family's ``position_fn``: for the Qwen-VL
  families 4 rows, the text positions restarting at 0 for every sample, which transformers reads as the
  packed-sequence boundaries, then the 3-D rope positions computed for the sample alone), concatenated; shape
  (n_rows, rows, length), or (rows, length) for a family with one row;
- attention: on flash_attention_2 no mask (transformers' varlen path splits on the restarting text
  positions); on sdpa a block-diagonal causal 4-D boolean mask; on eager the same as an additive mask;
- vision inputs of the samples in the order their tokens appear.

A micro-batch packs exactly the samples it would have padded (``per_device_batch_size`` of them), so
packing changes the cost of a step, not what the step learns: the loss is the same number.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from train.collate import IGNORE_INDEX, Encoded, concat_vision

RopeIndexFn = Callable[[Encoded], torch.Tensor]


class PackingError(ValueError):
    """A sample does not fit in a packed row."""


def rope_index_fn(model) -> RopeIndexFn:
    """A function Encoded -> (n_rows, n) position ids of the sample alone, from the model's family
    (train/models/); a family that cannot pack raises PackingError with its reason.

    It depends only on the config, so it is safe to call from the collator (any process, any ZeRO stage).
    """
    from train.models import family_for_model

    family = family_for_model(model)
    if family.packing_refusal:
        raise PackingError(f"train.packing=true: {family.name}: {family.packing_refusal}")
    return family.position_fn(model)


def first_fit_decreasing(lengths: list[int], capacity: int) -> list[list[int]]:
    """Bins of item indices whose lengths sum to at most ``capacity``; items keep input order within a bin."""
    bins: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda i: -lengths[i]):
        if lengths[i] > capacity:
            raise PackingError(f"a sample of {lengths[i]} tokens does not fit train.packing_max_length={capacity}")
        for b, free in enumerate(room):
            if lengths[i] <= free:
                bins[b].append(i)
                room[b] -= lengths[i]
                break
        else:
            bins.append([i])
            room.append(capacity - lengths[i])
    return [sorted(b) for b in bins]


def block_causal_mask(segments: torch.Tensor) -> torch.Tensor:
    """(rows, 1, L, L) boolean: query i sees key j iff same segment and j <= i."""
    same = segments[:, :, None] == segments[:, None, :]
    causal = torch.ones(segments.shape[1], segments.shape[1], dtype=torch.bool).tril()
    return (same & causal)[:, None]


def pack_batch(encoded: list[Encoded], max_length: int, pad_id: int, rope_fn: RopeIndexFn,
               attn_implementation: str = "sdpa", dtype: torch.dtype = torch.float32) -> dict[str, torch.Tensor]:
    """Pack ``encoded`` into as few rows of at most ``max_length`` tokens as fit (see module doc)."""
    bins = first_fit_decreasing([len(e) for e in encoded], max_length)
    length = max(sum(len(encoded[i]) for i in b) for b in bins)
    rows = len(bins)
    input_ids = torch.full((rows, length), pad_id, dtype=torch.long)
    labels = torch.full((rows, length), IGNORE_INDEX, dtype=torch.long)
    mm = torch.zeros((rows, length), dtype=torch.long)
    positions = {id(e): rope_fn(e) for e in encoded}
    n_rows = next(iter(positions.values())).shape[0]
    position_ids = torch.zeros((n_rows, rows, length), dtype=torch.long)
    segments = torch.zeros((rows, length), dtype=torch.long)
    order: list[Encoded] = []
    for r, b in enumerate(bins):
        start = 0
        for seg, i in enumerate(b):
            e = encoded[i]
            end = start + len(e)
            input_ids[r, start:end] = e.input_ids
            labels[r, start:end] = e.labels
            mm[r, start:end] = e.mm_token_type_ids
            position_ids[:, r, start:end] = positions[id(e)]
            segments[r, start:end] = seg
            order.append(e)
            start = end
        if start < length:  # trailing padding: one more segment of its own (never attended by real tokens)
            position_ids[:, r, start:] = torch.arange(length - start)
            segments[r, start:] = len(b)
    if n_rows == 1:
        position_ids = position_ids[0]
    batch = {"input_ids": input_ids, "labels": labels, "position_ids": position_ids, "mm_token_type_ids": mm,
             "real_tokens": torch.tensor(sum(len(e) for e in encoded))}
    if attn_implementation != "flash_attention_2":
        mask = block_causal_mask(segments)
        if attn_implementation == "eager":
            mask = torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, torch.finfo(dtype).min)
        batch["attention_mask"] = mask
    batch.update(concat_vision(order))
    return batch
