"""Windows of consecutive rows for sequence models (model.name=seq).

A sequence model reads W consecutive rows at once and labels every row of the window. Windows
are cut inside runs of consecutive row numbers only: a fold's training rows of a blocked split
form runs that stop at the gap before the validation block, so a training window never holds a
validation row, nor a row of the gap. A run shorter than W gives one window padded by repeating
its last row; the padded positions carry no loss and no prediction (mask False).

At prediction, windows overlap (stride < W) and each row's output is the mean over the windows
that hold it, so no row is labelled from the edge of a window alone where it can be helped.
"""

from __future__ import annotations

import numpy as np
import torch


def cut_windows(
    runs: list[tuple[int, int]], window: int, stride: int, phases: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Windows (n, window) of positions and their mask (True: a real row, False: padding).

    A run longer than `window` gives windows starting at 0, stride, 2 stride, ..., and one more
    ending at the run's last row, so every row is in at least one window. With `phases` (one
    per run, in [0, stride): training draws them per epoch, so window edges move) the windows
    start at phase, phase + stride, ... instead, and rows outside them wait for another epoch.
    """
    positions, masks = [], []
    offsets = np.arange(window)
    for r, (lo, hi) in enumerate(runs):
        n = hi - lo
        if n <= 0:
            continue
        if n <= window:  # one window; a short run repeats its last row
            positions.append(np.minimum(lo + offsets, hi - 1)[None, :])
            masks.append((offsets < n)[None, :])
            continue
        if phases is None:  # every row covered: the last window ends at the run's end
            starts = np.unique(np.append(np.arange(0, n - window, stride), n - window))
        else:  # training: windows shifted by the epoch's phase (edges move between epochs)
            starts = np.arange(int(phases[r]), n - window + 1, stride)
            if len(starts) == 0:
                starts = np.array([n - window])
        starts = starts + lo
        positions.append(starts[:, None] + offsets[None, :])
        masks.append(np.ones((len(starts), window), dtype=bool))
    if not positions:
        return np.empty((0, window), np.int64), np.empty((0, window), bool)
    return np.concatenate(positions).astype(np.int64), np.concatenate(masks)


def row_runs(index: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) positions in `index` of its runs of consecutive row numbers."""
    index = np.asarray(index)
    if len(index) == 0:
        return []
    cuts = np.flatnonzero(np.diff(index) != 1) + 1
    starts = np.concatenate([[0], cuts])
    stops = np.concatenate([cuts, [len(index)]])
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


class WindowBatches:
    """Training batches of windows for Lightning's fit loop: per epoch new window phases and a
    new order, `per_batch` windows per step, the same number of steps every epoch; each item is
    (x, y, offset, mask, windows) with x of shape (windows, W, features), y, offset, mask and
    the window positions of shape (windows, W)."""

    def __init__(
        self,
        x,
        y,
        offset,
        runs,
        window: int,
        stride: int,
        per_batch: int,
        seed: int = 0,
        shuffle: bool = True,
    ):
        self.x, self.y, self.offset = x, y, offset
        self.runs, self.window, self.stride = runs, window, stride
        self.per_batch = max(1, per_batch)
        self.shuffle = shuffle
        self.rng = np.random.default_rng(seed)
        self.windows, self.mask = cut_windows(runs, window, stride)

    def __len__(self) -> int:
        n = len(self.windows)
        return max(1, -(-n // self.per_batch))

    def _epoch_windows(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.shuffle:
            return self.windows, self.mask
        phases = self.rng.integers(0, self.stride, size=len(self.runs))
        windows, mask = cut_windows(self.runs, self.window, self.stride, phases)
        # as many windows as len() promises (schedules and Lightning count the steps): the
        # shifted cut may give a few fewer, topped up with random repeats, or a few more
        n = len(self.windows)
        order = self.rng.permutation(len(windows))
        if len(order) < n:
            order = np.concatenate([order, self.rng.integers(0, len(windows), n - len(order))])
        order = order[:n]
        return windows[order], mask[order]

    def __iter__(self):
        windows, mask = self._epoch_windows()
        steps = len(self)
        for b in range(steps):
            w = torch.from_numpy(windows[b * self.per_batch : (b + 1) * self.per_batch])
            if len(w) == 0:
                return
            m = torch.from_numpy(mask[b * self.per_batch : (b + 1) * self.per_batch])
            yield self.x[w], self.y[w], self.offset[w], m, w


def average_windows(
    outputs: torch.Tensor, windows: torch.Tensor, mask: torch.Tensor, n_rows: int
) -> torch.Tensor:
    """Per-row mean of window outputs (n_windows, W, ...) over the windows holding each row;
    padded positions (mask False) are left out."""
    flat = outputs.reshape(-1, *outputs.shape[2:])[mask.reshape(-1)]
    rows = windows.reshape(-1)[mask.reshape(-1)].to(outputs.device)
    total = torch.zeros((n_rows, *outputs.shape[2:]), dtype=flat.dtype, device=outputs.device)
    total.index_add_(0, rows, flat)
    count = torch.zeros(n_rows, dtype=flat.dtype, device=outputs.device)
    count.index_add_(0, rows, torch.ones_like(rows, dtype=flat.dtype))
    shape = (n_rows,) + (1,) * (total.dim() - 1)
    return total / count.clamp(min=1).view(shape)
