"""Callbacks that end training: per-fold early stopping for the stacked folds, the finite
guard of a single fold, and the per-epoch hook tuning prunes through.

A single fold uses Lightning's own EarlyStopping and ModelCheckpoint (engine/plain.py). K
stacked folds share one Trainer, so FoldEarlyStopping keeps one Lightning EarlyStopping per
fold and asks each for its verdict on its fold's score: patience, min_delta, mode and the
non-finite rule are Lightning's, exactly as on the plain engine. What Lightning has no callback
for is written here: each fold's best weights kept in memory (strict improvement, as
ModelCheckpoint keeps them), and training ends when every fold has stopped.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping


class FoldEarlyStopping(L.Callback):
    """Per-fold best epoch (weights kept in memory) and patience; stops when all folds have.

    `module.fold_scores` holds the K validation scores of the epoch (NaN: not finite)."""

    def __init__(self, K: int, patience: int, min_delta: float, mode: str):
        self.K, self.patience = K, patience
        self.sign = 1.0 if mode == "min" else -1.0
        self.stoppers = [
            EarlyStopping(f"fold{k}", min_delta=min_delta, patience=max(patience, 1), mode=mode)
            for k in range(K)
        ]
        self.best = [float("inf")] * K  # sign-adjusted, for restoring (strict improvement)
        self.best_epoch = [-1] * K
        self.stopped_at: list[int | None] = [None] * K  # epochs run when the fold stopped
        self.best_state: dict[str, torch.Tensor] | None = None

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking or module.fold_scores is None:
            return
        epoch = trainer.current_epoch
        state = module.stacked.state_dict()
        if self.best_state is None:
            self.best_state = {name: t.detach().clone() for name, t in state.items()}
        for k, value in enumerate(module.fold_scores.tolist()):
            if self.stopped_at[k] is not None:
                continue
            score = self.sign * value
            if score < self.best[k]:  # False for NaN
                self.best[k], self.best_epoch[k] = score, epoch
                for name, t in state.items():
                    self.best_state[name][k].copy_(t[k])
            # Lightning's rule for this fold (its private verdict method: the public hook
            # would stop the whole Trainer, and K folds share it)
            stop, _ = self.stoppers[k]._evaluate_stopping_criteria(torch.tensor(value))
            if (stop and self.patience > 0) or not math.isfinite(value):
                self.stopped_at[k] = epoch + 1
        if all(s is not None for s in self.stopped_at):
            trainer.should_stop = True


class EpochHook(L.Callback):
    """Calls fn(fold, epoch, value) after each validation with the monitored value (fold is
    None when the folds train together: the value is then their mean)."""

    def __init__(
        self, fold: int | None, monitor: str, fn: Callable[[int | None, int, float], None]
    ):
        self.fold, self.monitor, self.fn = fold, monitor, fn

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and not trainer.sanity_checking:
            self.fn(self.fold, trainer.current_epoch, float(value))


class FiniteGuard(L.Callback):
    """Stops a fold whose training loss or validation metric is no longer finite; the best
    finite epoch, if any, is restored as usual."""

    def __init__(self, monitor: str):
        self.monitor = monitor

    def on_validation_end(self, trainer, pl_module) -> None:
        for key in ("train/loss", self.monitor):
            value = trainer.callback_metrics.get(key)
            if value is not None and not torch.isfinite(torch.as_tensor(value)).all():
                trainer.should_stop = True
