"""In-memory batching: batches sliced from whole tensors, no per-item Dataset calls.

A DataLoader over a TensorDataset calls __getitem__ once per row and collates the rows again;
for arrays that already sit in memory that is pure overhead. TensorBatches draws one permutation
per epoch and slices every tensor with it.
"""

from __future__ import annotations

import numpy as np
import torch

from pipeline.engine.windows import cut_windows


def to_tensor(array: np.ndarray, dtype=None) -> torch.Tensor:
    """A tensor sharing the array's memory when it can (contiguous and writable: PyTorch
    refuses read-only memory such as memory maps and pandas' copy-on-write arrays)."""
    array = np.ascontiguousarray(array, dtype=dtype)
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(array)


class TensorBatches:
    """An iterable of batches for Lightning's fit/validate loops.

    drop_last="single" drops a trailing batch of one row only (batch norm cannot train on it); the
    dropped row changes every epoch when shuffling.

    shard=True: under data-parallel training (torch.distributed initialised, as Lightning's
    DDP strategies do) each process takes every world_size-th row of the epoch's order, all
    processes the same number, so each trains on its own share (what DistributedSampler does
    for a DataLoader).
    """

    def __init__(
        self,
        *tensors: torch.Tensor,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        drop_last: bool | str = False,
        shard: bool = False,
    ):
        sizes = {len(t) for t in tensors}
        if len(sizes) != 1:
            raise ValueError(f"All tensors need the same number of rows; got {sorted(sizes)}.")
        self.tensors = tensors
        self.n = sizes.pop()
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.shard = shard
        self.generator = torch.Generator(device=tensors[0].device).manual_seed(seed)

    def _world(self) -> tuple[int, int]:
        if self.shard and torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return 0, 1

    def _stops(self) -> range:
        n = self.n // self._world()[1]
        stop = n
        if self.drop_last is True:
            stop = n - n % self.batch_size
        elif self.drop_last == "single" and n % self.batch_size == 1 and n > 1:
            stop = n - 1
        return range(0, stop, self.batch_size)

    def __len__(self) -> int:
        return len(self._stops())

    def __iter__(self):
        device = self.tensors[0].device
        order = (
            torch.randperm(self.n, generator=self.generator, device=device)
            if self.shuffle
            else None
        )
        rank, world = self._world()
        if world > 1:
            base = order if order is not None else torch.arange(self.n, device=device)
            order = base[: (self.n // world) * world][rank::world]
        n = self.n // world
        for start in self._stops():
            end = min(start + self.batch_size, n)
            if order is None:
                yield tuple(t[start:end] for t in self.tensors)
            else:
                idx = order[start:end]
                yield tuple(t[idx] for t in self.tensors)


class StackedBatches:
    """Per epoch, each fold's training rows in a new random order, padded with random extra
    rows of the same fold to a whole number of full batches (all steps have one shape).

    One item per epoch: the (steps, K, batch) row indices of the whole epoch. The module runs
    the optimizer steps itself, so Lightning's per-batch machinery runs once per epoch."""

    def __init__(self, train_idx: list[torch.Tensor], batch_size: int, seed: int):
        self.train_idx = train_idx
        self.batch_size = batch_size
        longest = max(len(t) for t in train_idx)
        self.steps = max(1, -(-longest // batch_size))
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        total = self.steps * self.batch_size
        order = []
        for idx in self.train_idx:
            n = len(idx)
            perm = torch.randperm(n, generator=self.generator)
            extra = torch.randint(n, (max(0, total - n),), generator=self.generator)
            order.append(idx[torch.cat([perm, extra])[:total]])
        order = torch.stack(order)  # (K, total)
        yield order.view(len(order), self.steps, self.batch_size).transpose(0, 1)


class OncePerEpoch:
    """The validation 'loader': one placeholder batch; the module validates all folds at once."""

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield torch.zeros(1)


class StackedWindowBatches:
    """The sequence models' StackedBatches: per epoch, each fold's training windows (cut inside
    its runs of consecutive rows, with a new random phase per run, as WindowBatches cuts them)
    in a new order, padded with random repeats of the same fold's windows to the same number of
    steps every epoch. One item per epoch: (steps, K, per_batch, W) row numbers and their mask
    (False: padding inside a short run)."""

    def __init__(self, train_idx: list[np.ndarray], runs: list[list[tuple[int, int]]],
                 window: int, stride: int, per_batch: int, seed: int):  # fmt: skip
        self.train_idx = [np.asarray(i) for i in train_idx]
        self.runs, self.window, self.stride = runs, window, stride
        self.per_batch = max(1, per_batch)
        self.rng = np.random.default_rng(seed)
        self.counts = [len(cut_windows(r, window, stride)[0]) for r in runs]
        self.steps = max(1, -(-max(self.counts) // self.per_batch))

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        total = self.steps * self.per_batch
        positions, masks = [], []
        for idx, runs in zip(self.train_idx, self.runs, strict=True):
            phases = self.rng.integers(0, self.stride, size=len(runs))
            windows, mask = cut_windows(runs, self.window, self.stride, phases)
            order = self.rng.permutation(len(windows))
            if len(order) < total:
                order = np.concatenate(
                    [order, self.rng.integers(0, len(windows), total - len(order))]
                )
            order = order[:total]
            positions.append(idx[windows[order]])  # the fold's row numbers
            masks.append(mask[order])
        shape = (len(positions), self.steps, self.per_batch, self.window)
        pos = torch.from_numpy(np.stack(positions)).view(shape).transpose(0, 1)
        mask = torch.from_numpy(np.stack(masks)).view(shape).transpose(0, 1)
        yield pos.contiguous(), mask.contiguous()
