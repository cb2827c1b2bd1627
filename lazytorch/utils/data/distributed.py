"""torch.utils.data.distributed.DistributedSampler: each rank's share of a dataset's indices.

The shuffled order is PyTorch's: its CPU randperm (a Fisher-Yates shuffle drawing from the
mt19937 stream seeded with seed + epoch), so a rank reads the same samples as under PyTorch for
the same seed, epoch, rank and world size.
"""
from __future__ import annotations

import math
from typing import Iterator, Sized

import numpy as np

from .sampler import Sampler

__all__ = ["DistributedSampler"]


def torch_randperm(n: int, seed: int) -> list[int]:
    """PyTorch's `torch.randperm(n, generator=torch.Generator().manual_seed(seed))` on CPU."""
    raw = np.random.RandomState(seed % 2 ** 32)._bit_generator.random_raw(max(n - 1, 0))
    perm = list(range(n))
    for i in range(n - 1):
        z = i + int(raw[i]) % (n - i)
        perm[i], perm[z] = perm[z], perm[i]
    return perm


class DistributedSampler(Sampler):
    """Rank `rank`'s indices of `dataset`: every num_replicas-th index of the (shuffled)
    order, starting at `rank`, padded by repeating the first indices to a multiple of
    num_replicas (or cut to one with drop_last)."""

    def __init__(self, dataset: Sized, num_replicas: int | None = None, rank: int | None = None,
                 shuffle: bool = True, seed: int = 0, drop_last: bool = False) -> None:
        if num_replicas is None or rank is None:
            from ... import distributed as dist
            if not dist.is_available():
                raise RuntimeError("Requires distributed package to be available")
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(f"Invalid rank {rank}, rank should be in the interval "
                             f"[0, {num_replicas - 1}]")
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        indices = torch_randperm(n, self.seed + self.epoch) if self.shuffle else list(range(n))
        if not self.drop_last:
            pad = self.total_size - len(indices)
            if pad <= len(indices):
                indices += indices[:pad]
            else:
                indices += (indices * math.ceil(pad / len(indices)))[:pad]
        else:
            indices = indices[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """The epoch the next iteration shuffles for (so every rank shuffles alike)."""
        self.epoch = epoch
