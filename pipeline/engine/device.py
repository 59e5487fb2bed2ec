"""The rows of all K folds on the device, with each fold's preprocessing applied there.

Two ways in, chosen by the engine choice (engine/choice.py):
- affine: one copy of the raw rows; each fold's preprocessing is a column selection with a
  per-column affine map read from its fitted parameters, applied per batch (or for all rows
  at once when K copies fit the memory budget);
- host: each fold's preprocessing is run on the host once (any scikit-learn transform) and
  the K transformed arrays are moved to the device.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from pipeline.competition.target import from_model, to_model


@dataclass
class DeviceFolds:
    """Everything a stacked step needs, as tensors that can move to the device together."""

    X: torch.Tensor | None  # (N, raw features) float32 raw rows (affine); None (host)
    y: torch.Tensor  # (N,), float32 values or int64 classes
    offset: torch.Tensor  # (N,), the raw offset column (zeros when none)
    columns: torch.Tensor | None  # (K, F) raw column of each fold's input feature (affine)
    center: torch.Tensor | None  # (K, F): fold k's input = (X[:, columns[k]] - center) * mult
    mult: torch.Tensor | None  # (K, F)
    target_shift: torch.Tensor  # (K,)
    target_scale: torch.Tensor  # (K,)
    train_idx: list[torch.Tensor]
    val_idx: list[torch.Tensor]
    classification: bool = False
    # Per-fold inputs computed for all rows: given (host) or computed once when they fit the
    # memory budget (affine); a step then only gathers rows. Otherwise each step maps its rows.
    Xk: torch.Tensor | None = None  # (K, N, F)
    zk: torch.Tensor | None = None  # (K, N) model-space regression targets
    fold_index: torch.Tensor | None = None  # (K, 1) arange, for gathering per fold
    every_column: bool | None = None  # every fold's map keeps every raw column (asked once)

    def to(self, device, rows: str = "device") -> DeviceFolds:
        """rows: "device" (float32), "bf16" (rows stored as bfloat16 on the device) or "host"
        (rows stay in host memory; each step's batch is gathered there and copied over)."""
        big = "X" if self.X is not None else "Xk"
        moved = {
            k: (v.to(device) if isinstance(v, torch.Tensor) else [t.to(device) for t in v])
            if isinstance(v, (torch.Tensor, list)) and k != big
            else v
            for k, v in self.__dict__.items()
        }
        rows_tensor = getattr(self, big)
        if rows == "device":
            moved[big] = rows_tensor.to(device)
        elif rows == "bf16":
            moved[big] = rows_tensor.to(device=device, dtype=torch.bfloat16)
        return DeviceFolds(**moved)

    @property
    def rows_bytes(self) -> int:
        """float32 bytes of what must sit on the device: the raw rows, or the K fold arrays."""
        return (self.X if self.X is not None else self.Xk).numel() * 4

    def place(
        self, device: torch.device, free_bytes: int | None = None
    ) -> tuple[DeviceFolds, str | None]:
        """Move to the device within its memory: the rows as float32 if they fit, else as
        bfloat16, else left in host memory. Returns the data and a note unless float32."""
        if device.type != "cuda":
            return self.to(device), None
        if free_bytes is None:
            free_bytes, _ = torch.cuda.mem_get_info(device)
        need = self.rows_bytes
        if need <= 0.6 * free_bytes:
            return self.to(device), None
        gib = f"{need / 2**30:.1f} GiB of rows, {free_bytes / 2**30:.1f} GiB free on the GPU"
        if need / 2 <= 0.6 * free_bytes:
            return self.to(device, "bf16"), f"rows kept as bfloat16 on the GPU ({gib})"
        note = f"rows kept in host memory, batches copied to the GPU each step ({gib}); slower"
        return self.to(device, "host"), note

    @property
    def K(self) -> int:
        return len(self.columns) if self.columns is not None else len(self.Xk)

    def materialize(self, budget_bytes: int) -> None:
        """Precompute every fold's inputs (and regression targets) if they fit in the budget."""
        if self.Xk is None and self.X.device == self.y.device:
            if self.K * self.X.shape[0] * self.columns.shape[1] * 4 > budget_bytes:
                return
            self.Xk = torch.stack([self._mapped(self.X, k) for k in range(self.K)])
        if not self.classification and self.Xk is not None:
            self.zk = self._to_model(self.y, self.offset)

    def _mapped(self, rows: torch.Tensor, k: int) -> torch.Tensor:
        return (rows[:, self.columns[k]].float() - self.center[k]) * self.mult[k]

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """(K, B) row indices -> (K, B, F) preprocessed inputs, fold k with fold k's map; (K, B,
        W) windows of rows -> (K, B, W, F)."""
        if idx.dim() > 2:
            return self.inputs(idx.reshape(idx.shape[0], -1)).view(*idx.shape, -1)
        if self.Xk is not None:
            if self.Xk.device != idx.device:  # fold arrays in host memory: gather, copy
                return self.Xk[self._folds(idx).cpu(), idx.cpu()].to(idx.device).float()
            return self.Xk[self._folds(idx), idx].float()
        if self.X.device != idx.device:  # rows in host memory: gather there, copy the batch
            rows = self.X[idx.cpu()].to(idx.device, non_blocking=True)
        else:
            rows = self.X[idx]  # (K, B, raw)
        if self.every_column is None:
            self.every_column = keeps_every_column(self.columns, self.X.shape[1])
        return map_rows(rows, self.columns, self.center, self.mult, self.every_column)

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        """(K, B) model-space targets: classes, or fold k's target map of the values; (K, B, W)
        for windows."""
        if idx.dim() > 2:
            return self.targets(idx.reshape(idx.shape[0], -1)).view(idx.shape)
        if self.classification:
            return self.y[idx]
        if self.zk is not None:
            return self.zk[self._folds(idx), idx]
        return self._to_model(self.y[idx], self.offset[idx])

    def _to_model(self, y: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Each fold's model-space targets: (K, n) from y and offset of (n,) or (K, n)."""
        return to_model(y, offset, self.target_shift[:, None], self.target_scale[:, None])

    def target_scale_of(self, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """(K, B) (or (K, B, W)) model-space values of rows `idx` back on the competition's
        scale."""
        fold = (-1,) + (1,) * (z.dim() - 1)
        shift, scale = self.target_shift.view(fold), self.target_scale.view(fold)
        return from_model(z, self.offset[idx], shift, scale)

    def _folds(self, idx: torch.Tensor) -> torch.Tensor:
        if self.fold_index is None or self.fold_index.device != idx.device:
            self.fold_index = torch.arange(self.K, device=idx.device)[:, None]
        return self.fold_index


def keeps_every_column(columns: torch.Tensor | None, raw: int) -> bool:
    """Every fold's map keeps every raw column in order (the usual features.select=all)."""
    if columns is None or columns.shape[1] != raw:
        return False
    return bool((columns.cpu() == torch.arange(raw)).all())


def map_rows(rows: torch.Tensor, columns, center, mult, every_column: bool) -> torch.Tensor:
    """Raw rows, (K, B, raw) (fold k's rows) or (B, raw) (the same rows for every fold), mapped
    by each fold's affine map: (K, B, F). `every_column` (keeps_every_column, asked once, not
    per step: the answer would wait for the GPU): no gather needed."""
    rows = rows.float()  # no-op for float32 rows; widens bfloat16 ones
    if rows.dim() == 2:
        rows = rows.unsqueeze(0)
    K = columns.shape[0]
    if every_column:
        return (rows - center.unsqueeze(1)) * mult.unsqueeze(1)
    rows = rows.expand(K, -1, -1)
    cols = columns.unsqueeze(1).expand(-1, rows.shape[1], -1)
    return (torch.gather(rows, 2, cols) - center.unsqueeze(1)) * mult.unsqueeze(1)


EPOCH_GATHER = 16 << 20  # values: an epoch's inputs gathered in one go up to 64 MB of float32


def memory_budget(device: torch.device) -> int:
    """Bytes the precomputed per-fold inputs may take: 40% of free GPU memory, or a quarter
    of the machine's RAM (at most 4 GB) on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(0.4 * free)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return min(ram // 4, 4 << 30)
