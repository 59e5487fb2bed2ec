"""Progress for long runs: one bar over all folds and epochs, or one line per fold in logs."""

from __future__ import annotations

import sys

import lightning as L
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


def bar(console: Console, live: bool) -> Progress:
    """The project's progress bar: description, bar, done/total, elapsed, ETA; shown only when
    `live` (a terminal or a notebook), so logs get plain lines instead."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=not live,
    )


class RunProgress:
    """Context manager; `callback(fold)` gives the Lightning callback that feeds it."""

    def __init__(self, folds: int, epochs: int, monitor: str, enabled: bool = True):
        self.folds, self.epochs, self.monitor = folds, epochs, monitor
        self.console = Console(stderr=True)
        live = self.console.is_terminal or self.console.is_jupyter
        self.enabled = enabled
        self.live = enabled and live
        self.progress = bar(self.console, self.live)
        self.task = None

    def __enter__(self) -> RunProgress:
        self.progress.start()
        self.task = self.progress.add_task("training", total=self.folds * self.epochs)
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def callback(self, fold: int, mode: str) -> L.Callback:
        return _FoldProgress(self, fold, mode)

    def stacked_callback(self, folds: int, mode: str) -> L.Callback:
        """For all folds trained together: the bar advances by every fold's epoch at once."""
        return _StackedProgress(self, folds, mode)

    def stacked_epoch_done(self, folds: int, epoch: int, value: float, best: float) -> None:
        if self.live:
            self.progress.update(
                self.task,
                completed=min(epoch + 1, self.epochs) * folds,
                description=f"{folds} folds together · epoch {epoch + 1} · mean {self.monitor} "
                f"{value:.4f} (best {best:.4f})",
            )

    def epoch_done(self, fold: int, epoch: int, value: float, best: float) -> None:
        if not self.live:
            return
        shown = f" · {self.monitor} {value:.4f} (best {best:.4f})"
        self.progress.update(
            self.task,
            completed=fold * self.epochs + epoch + 1,
            description=f"fold {fold + 1}/{self.folds} · epoch {epoch + 1}{shown}",
        )

    def fold_done(self, fold: int, line: str) -> None:
        if self.live:
            self.progress.update(self.task, completed=(fold + 1) * self.epochs)
        elif self.enabled:
            print(line, file=sys.stderr, flush=True)


class _FoldProgress(L.Callback):
    def __init__(self, run: RunProgress, fold: int, mode: str):
        self.run, self.fold, self.sign = run, fold, (1.0 if mode == "min" else -1.0)
        self.best: float | None = None

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.run.monitor)
        if trainer.sanity_checking or value is None:
            return
        value = float(value)
        if self.best is None or self.sign * value < self.sign * self.best:
            self.best = value
        self.report(trainer.current_epoch, value)

    def report(self, epoch: int, value: float) -> None:
        self.run.epoch_done(self.fold, epoch, value, self.best)


class _StackedProgress(_FoldProgress):
    def __init__(self, run: RunProgress, folds: int, mode: str):
        super().__init__(run, 0, mode)
        self.folds = folds

    def report(self, epoch: int, value: float) -> None:
        self.run.stacked_epoch_done(self.folds, epoch, value, self.best)
