"""The few torch.distributed steps evaluation needs: shard, gather on rank 0, broadcast back.

Everything degrades to a no-op in a single process (no process group).
"""

from __future__ import annotations

from collections.abc import Sequence
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
