"""The SFT data stream: Samples from the mixer -> encoded -> padded or packed micro-batches.

Batches are built in the training process (the DataLoader has no workers and no prefetch), so
the mixer's state at a checkpoint is exactly "after the last batch the model trained on": resume
continues with the next sample. Media decoding and the processor run here too; on the small
models this is measured to be a small share of a step, on GPUs see docs/SFT.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

import torch

from data_mix.badsample import BadSample, BadSampleTracker
from train.collate import SampleEncoder, SampleEncodingError, batch_stats, pad_batch
from train.packing import RopeIndexFn, pack_batch


class BadDataError(RuntimeError):
    """A sample the encoder cannot turn into model inputs, under ``data.on_bad_sample=error``."""


class BatchStream(torch.utils.data.IterableDataset):
    """Micro-batches of ``batch_size`` samples from ``source`` (an iterable of Samples, ideally with
    ``state_dict`` / ``load_state_dict`` like data_mix's Mix). Each batch carries ``_stats``.

    A sample the encoder rejects (media that fails to decode, the processor) goes through ``data.on_bad_sample``
    with data_mix's own policy (:class:`data_mix.badsample.BadSampleTracker`: counted per reason, the first few
    logged, TooManyBadSamples past ``data.max_skip_fraction`` after ``data.skip_check_after`` samples); the
    mixer's read-time skips are counted by the mixer's own tracker."""

    def __init__(self, source: Iterable, encoder: SampleEncoder, batch_size: int, data_cfg,
                 packing: bool = False, packing_max_length: int | None = None,
                 rope_fn: RopeIndexFn | None = None, attn_implementation: str = "sdpa"):
        super().__init__()
        if packing and rope_fn is None:
            raise ValueError("packing needs the model's rope index function")
        self.source = source
        self.encoder = encoder
        self.batch_size = batch_size
        self.data_cfg = data_cfg
        self.packing = packing
        self.packing_max_length = packing_max_length or encoder.max_length
        self.rope_fn = rope_fn
        self.attn_implementation = attn_implementation
        self.skips = BadSampleTracker.from_config(data_cfg)

    @property
    def seen(self) -> int:
        """Samples given to the encoder (encoded or skipped)."""
        return self.skips.seen

    @property
    def skipped(self) -> int:
        return self.skips.skipped

    @property
    def skip_counts(self) -> Counter:
        """Encoder-level skips per data_mix reason code (truncated_image ..., ``unencodable`` for the rest)."""
        return self.skips.counts

    # ------------------------------------------------------------------ resume
    def state_dict(self) -> dict[str, Any]:
        src = self.source.state_dict() if hasattr(self.source, "state_dict") else None
        return {"source": src, "seen": self.seen, "skipped": self.skipped, "skip_counts": dict(self.skip_counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("source") is not None:
            if not hasattr(self.source, "load_state_dict"):
                raise BadDataError("the checkpoint has a data position but this data source cannot be resumed")
            self.source.load_state_dict(state["source"])
        self.skips.load_state_dict({"seen": state.get("seen", 0), "counts": state.get("skip_counts", {})})

    # ------------------------------------------------------------------ iteration
    def _encode(self, sample):
        try:
            encoded = self.encoder.encode(sample)
        except SampleEncodingError as exc:
            if self.skips.policy != "skip":
                raise BadDataError(f"{exc} (data.on_bad_sample=error; set it to skip to count and skip)") from exc
            cause = exc.__cause__
            bad = cause if isinstance(cause, BadSample) else BadSample(sample.file or sample.id, sample.row,
                                                                       "unencodable", str(exc))
            self.skips.bad(bad)  # counts it; TooManyBadSamples past data.max_skip_fraction
            return None
        self.skips.ok()
        return encoded

    def collate(self, encoded: list) -> dict[str, torch.Tensor]:
        if self.packing:
            batch = pack_batch(encoded, self.packing_max_length, self.encoder.pad_id, self.rope_fn,
                               self.attn_implementation)
        else:
            batch = pad_batch(encoded, self.encoder.pad_id)
        batch["_stats"] = batch_stats(batch, len(encoded))
        batch.pop("real_tokens", None)
        return batch

    def __iter__(self):
        pending = []
        for sample in self.source:
            enc = self._encode(sample)
            if enc is None:
                continue
            pending.append(enc)
            if len(pending) == self.batch_size:
                yield self.collate(pending)
                pending = []
        if pending:
            yield self.collate(pending)


class ListSource:
    """A resumable source over an in-memory list of Samples (tests, small user lists), cycling by epoch."""

    def __init__(self, samples: list, epochs: int = 1):
        self.samples = list(samples)
        self.epochs = epochs
        self.pos = 0

    @property
    def total_samples(self) -> int:
        return len(self.samples) * self.epochs

    def state_dict(self) -> dict[str, int]:
        return {"pos": self.pos}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.pos = int(state["pos"])

    def __iter__(self):
        while self.pos < self.total_samples:
            sample = self.samples[self.pos % len(self.samples)]
            self.pos += 1
            yield sample
