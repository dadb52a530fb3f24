"""A torch IterableDataset over a Mix that shards across DataLoader workers.

Each worker takes blocks of ``block_size`` consecutive rank-local positions in turn (worker w the
blocks w, w + W, ...). With ``block_size`` = the DataLoader's batch size, the DataLoader's
round-robin over workers hands batches out in stream order. ``transform`` turns a Sample into what
the trainer wants (e.g. load media and build processor inputs); a BadSample it raises follows
``data.on_bad_sample`` like any other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from torch.utils.data import IterableDataset, get_worker_info

from data_mix.badsample import BadSample
from data_mix.mixer import Mix
from data_mix.sample import Sample


class MixIterableDataset(IterableDataset):
    def __init__(self, mix: Mix, transform: Callable[[Sample], Any] | None = None, block_size: int = 1):
        super().__init__()
        self.mix, self.transform, self.block_size = mix, transform, max(1, int(block_size))

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for sample in self.mix.iterate(self.mix.position, worker, workers, self.block_size):
            if self.transform is None:
                yield sample
                continue
            try:
                item = self.transform(sample)
            except BadSample as exc:
                self.mix.skips.bad(exc)
                continue
            yield item

    def __len__(self) -> int:
        return self.mix.samples_this_rank
