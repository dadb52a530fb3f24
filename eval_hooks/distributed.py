"""The few torch.distributed steps evaluation needs: shard, gather on rank 0, broadcast back.

Everything degrades to a no-op in a single process (no process group).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def rank_and_world() -> tuple[int, int]:
    dist = _dist()
    return (dist.get_rank(), dist.get_world_size()) if dist else (0, 1)


def shard_indices(n: int, rank: int, world: int) -> list[int]:
    """Strided share of ``range(n)`` for ``rank``, padded with -1 so every rank has the same length.

    Equal lengths matter: under ZeRO-3 every rank must call ``generate`` the same number of times.
    """
    per_rank = -(-n // world) if n else 0
    own = list(range(rank, n, world))
    return own + [-1] * (per_rank - len(own))


def gather_to_rank0(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` as a list on rank 0 (None elsewhere); ``[obj]`` in a single process."""
    dist = _dist()
    if dist is None:
        return [obj]
    world = dist.get_world_size()
    out = [None] * world if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_from_rank0(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank."""
    dist = _dist()
    if dist is None:
        return obj
    box = [obj if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    dist = _dist()
    if dist is not None:
        dist.barrier()


def is_zero3(model: Any) -> bool:
    """True when the model's parameters are partitioned by DeepSpeed ZeRO-3 (they carry ``ds_id``)."""
    return any(hasattr(p, "ds_id") for p in model.parameters())


def merge_shards(shards: Sequence[Sequence[tuple[int, Any]]], n: int) -> list[Any]:
    """Put gathered ``(index, item)`` pairs back in subset order; padding (index -1) is dropped."""
    out: list[Any] = [None] * n
    seen = 0
    for shard in shards:
        for idx, item in shard:
            if idx >= 0:
                out[idx] = item
                seen += 1
    if seen != n or any(x is None for x in out):
        raise RuntimeError(f"evaluation gather: expected {n} results, got {seen}")
    return out


def _zero3_coordinator(engine: Any) -> Any:
    """DeepSpeed ZeRO-3's parameter coordinator of a DeepSpeedEngine (None when there is none)."""
    opt = getattr(engine, "optimizer", None)
    offload = getattr(opt, "parameter_offload", None) or opt
    get = getattr(offload, "get_param_coordinator", None)
    return get() if callable(get) else getattr(offload, "param_coordinator", None)


def invalidate_zero3_trace(engine: Any) -> None:
    """Forget the module trace ZeRO-3 recorded during generation: it prefetches parameters by the
    order of the last recorded forward, and generation's forwards are not training's."""
    coord = _zero3_coordinator(engine)
    if coord is not None and hasattr(coord, "is_invalid_trace") and not coord.is_invalid_trace():
        coord._invalidate_trace()


@contextlib.contextmanager
def generation_model(trainer: Any, model: Any, gather_zero3: bool) -> Iterator[Any]:
    """The model to call ``generate`` on during training.

    Outside ZeRO-3 that is ``model`` itself. Under ZeRO-3, with ``gather_zero3`` the full weights are
    gathered on every rank and DeepSpeed's hooks removed for the duration (TRL's
    ``unwrap_model_for_generation``: fast, needs one full copy of the weights per device); without it,
    layers are gathered one at a time inside ``generate`` (lean, slow), and the trace ZeRO-3 recorded
    meanwhile is dropped afterwards so that training's prefetching starts clean.
    """
    engine = getattr(trainer, "model_wrapped", None)
    if trainer is None or engine is None or not is_zero3(model):
        yield model
        return
    if gather_zero3:
        from trl.models.utils import unwrap_model_for_generation

        with unwrap_model_for_generation(engine, trainer.accelerator, gather_deepspeed3_params=True) as unwrapped:
            yield unwrapped
        return
    try:
        yield model
    finally:
        invalidate_zero3_trace(engine)
