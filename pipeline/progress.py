"""Output that fits where it runs.

- A terminal (stderr is a TTY): one live bar over all folds and epochs.
- Inside a Jupyter kernel (the library called from a cell) with ipywidgets installed: rich's
  notebook display of the same bar.
- Anywhere else (a pipe, a log file, a notebook cell reading a subprocess): plain lines, one
  per fold and, in between, at most one every `pulse_gap` seconds (10 s, widening to a minute
  as the run gets long).

ipykernel sets FORCE_COLOR for every process a notebook starts, and rich takes that for a
terminal: it would draw its bar into the pipe with a `\\r` per redraw, which the notebook's
reader turns into a line each. So the choice reads the stream itself (`isatty`); FORCE_COLOR
still colours the text. TTY_INTERACTIVE=0/1 (rich's switch) overrides the choice.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time

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

PULSE_SECONDS = 10.0  # in lines: at most one progress line this often between fold lines
PULSE_MAX_SECONDS = 60.0  # ... widening to one a minute as a long run goes on
LOG_WIDTH = 160  # a pipe or a log has no width: wide enough that no table column is cut


def duration(seconds: float) -> str:
    """'35 s', '4 min 10 s', '1 h 02 min'."""
    s = int(seconds)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or closed (the end of a pytest run)
        return False


def is_live(console: Console) -> bool:
    """Whether `console` can show a live display: a real terminal, or a notebook kernel that
    can show rich's widget."""
    switch = os.environ.get("TTY_INTERACTIVE")
    if switch in ("0", "1"):
        return switch == "1"
    if console.is_jupyter:
        return importlib.util.find_spec("ipywidgets") is not None
    term = os.environ.get("TERM", "").lower()
    return _isatty(console.file) and term not in ("dumb", "unknown")


def make_console(stderr: bool = False) -> Console:
    """A rich Console for where the output goes: a terminal or a notebook as rich sees them;
    a pipe or a file wide enough for every table (COLUMNS, when set wider, wins), its lines of
    text never broken (a log viewer wraps them)."""
    stream = sys.stderr if stderr else sys.stdout
    probe = Console(stderr=stderr)
    if probe.is_jupyter or _isatty(stream):
        return probe
    columns = os.environ.get("COLUMNS", "")
    width = max(LOG_WIDTH, int(columns) if columns.isdigit() else 0)
    return Console(stderr=stderr, width=width, soft_wrap=True)


def pulse_gap(elapsed: float) -> float:
    """Seconds between progress lines: PULSE_SECONDS, then a tenth of the time elapsed up to
    PULSE_MAX_SECONDS (about 80 lines an hour)."""
    return min(max(PULSE_SECONDS, elapsed / 10.0), PULSE_MAX_SECONDS)


class LogPulse:
    """Progress as lines: `due()` once `pulse_gap` passed since the last line."""

    def __init__(self):
        self.started = self.last = time.monotonic()

    def due(self) -> bool:
        now = time.monotonic()
        return now - self.last >= pulse_gap(now - self.started)

    def say(self, line: str, elapsed: bool = True) -> None:
        now = time.monotonic()
        took = f" ({duration(now - self.started)})" if elapsed else ""
        print(f"{line}{took}", file=sys.stderr, flush=True)
        self.last = now


def bar(console: Console, live: bool) -> Progress:
    """The project's progress bar: description, bar, done/total, elapsed, ETA; shown only when
    `live`, so pipes and logs get plain lines instead."""
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
        self.console = make_console(stderr=True)
        live = is_live(self.console)
        self.enabled = enabled
        self.live = enabled and live
        self.progress = bar(self.console, self.live)
        self.task = None
        self.pulse = LogPulse() if enabled and not live else None

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
        if self.pulse is not None and self.pulse.due():
            self.pulse.say(
                f"{folds} folds together epoch {epoch + 1}/{self.epochs} mean "
                f"{self.monitor} {value:.4f}, best {best:.4f}"
            )
        if self.live:
            self.progress.update(
                self.task,
                completed=min(epoch + 1, self.epochs) * folds,
                description=f"{folds} folds together · epoch {epoch + 1} · mean {self.monitor} "
                f"{value:.4f} (best {best:.4f})",
            )

    def epoch_done(self, fold: int, epoch: int, value: float, best: float) -> None:
        if self.pulse is not None and self.pulse.due():
            self.pulse.say(
                f"fold {fold + 1}/{self.folds} epoch {epoch + 1}/{self.epochs} "
                f"{self.monitor} {value:.4f}, best {best:.4f}"
            )
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
        elif self.pulse is not None:
            self.pulse.say(line, elapsed=False)


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
