"""Ctrl-C and SIGTERM as one exception that the commands catch, whatever library code runs.

Python's own Ctrl-C is a KeyboardInterrupt, which Lightning's `Trainer.fit` turns into
`sys.exit(1)` and Optuna records as a failed trial; SIGTERM (Colab, job schedulers) kills the
process with no cleanup at all. `handled()` installs handlers that raise `Interrupted`, a
BaseException that is no KeyboardInterrupt: Lightning tears its trainer down and re-raises it
(it chains its own SIGTERM handler before ours), `except Exception` never catches it, and
`pipeline.cli.run_cli` ends the command with exit 130 (SIGINT) or 143 (SIGTERM) and one line
saying what was kept. A command names what it keeps with `keeping(...)`; `deferred()` holds a
signal back while a few renames must not stop half-way. A second signal while the first one's
cleanup runs stops the process at once (os._exit), after one line.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(BaseException):
    """A SIGINT or SIGTERM arrived; `kept` says what the interrupted command left behind."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum
        self.kept: str | None = None

    @property
    def how(self) -> str:
        return "Ctrl-C" if self.signum == signal.SIGINT else signal.Signals(self.signum).name

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 130 for SIGINT, 143 for SIGTERM


_state = {"installed": False, "deferred": 0, "pending": None, "raised": False}


def _handler(signum: int, frame) -> None:
    if _state["deferred"]:
        _state["pending"] = _state["pending"] or signum
        return
    if _state["raised"]:  # pressed again while cleaning up: stop now
        print("interrupted again: stopped without cleaning up", file=sys.stderr, flush=True)
        os._exit(128 + signum)
    _state["raised"] = True
    raise Interrupted(signum)


@contextmanager
def handled() -> Iterator[None]:
    """SIGINT and SIGTERM raise Interrupted inside the block (main thread only; elsewhere, and
    when already installed, the block runs as it is)."""
    if _state["installed"] or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in SIGNALS}
    _state.update(installed=True, deferred=0, pending=None, raised=False)
    for s in SIGNALS:
        signal.signal(s, _handler)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        _state.update(installed=False, deferred=0, pending=None)


@contextmanager
def keeping(kept: str | Callable[[], str]) -> Iterator[None]:
    """An Interrupted leaving the block says `kept` (a text, or a function giving it then),
    unless a block inside already said what was kept."""
    try:
        yield
    except Interrupted as exc:
        # a storage that cannot answer now (say) leaves the default line
        with suppress(Exception):
            if exc.kept is None:
                exc.kept = kept() if callable(kept) else kept
        raise


@contextmanager
def deferred() -> Iterator[None]:
    """A signal that arrives inside the block is raised when it ends (unless it fails)."""
    _state["deferred"] += 1
    try:
        yield
    finally:
        _state["deferred"] -= 1
    pending = _state["pending"]
    if pending is not None and not _state["deferred"]:
        _state.update(pending=None, raised=True)
        raise Interrupted(pending)


def message(exc: BaseException) -> str:
    """The one line for an interrupted command."""
    kept = getattr(exc, "kept", None) or "nothing was written"
    how = getattr(exc, "how", "Ctrl-C")
    return f"interrupted ({how}): {kept}"
