"""`--storage journal:PATH`: Optuna's append-only journal file, checked before a study uses it.

Optuna skips a last line that is not JSON (another worker may be half-way through writing it)
and fails only on a later read, after this worker appended to the file: a file holding one
garbage line opens, and the study ends in a traceback mid-run. Here every complete line of an
existing file must be one of Optuna's entries, and an unfinished last line must be finished
within `WAIT` seconds (by the worker writing it), before anything else happens."""

from __future__ import annotations

import json
import time
from pathlib import Path

from optuna.storages.journal import JournalFileBackend, JournalStorage

from pipeline.errors import UserError

WAIT = 1.0  # seconds another worker may take to finish writing the last line


def open_journal(url: str) -> JournalStorage:
    path = Path(url.removeprefix("journal:")).expanduser()
    if not path.parent.is_dir():
        raise UserError(f"--storage {url}: the folder {path.parent} does not exist.")
    if path.is_dir():
        raise UserError(
            f"Cannot open --storage {url} as an Optuna journal file (it is a folder); give "
            "the path of a file, e.g. journal:study.log."
        )
    try:
        bad = _bad_line(path)
        if bad is None:
            try:  # replays the file: entries that do not fit together fail here
                return JournalStorage(JournalFileBackend(str(path)))
            except (ValueError, KeyError, TypeError, AssertionError) as exc:
                bad = f"an entry Optuna cannot replay: {type(exc).__name__} {_first(exc)}"
    except OSError as exc:  # no permission, ...
        bad = exc.strerror or _first(exc)
    raise UserError(
        f"Cannot open --storage {url} as an Optuna journal file ({bad}); give another path (a "
        "new file starts a fresh study)."
    )


def _first(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else ""


def _bad_line(path: Path) -> str | None:
    """What is wrong with the first line that is not a journal entry, or None."""
    if not path.exists():
        return None
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        time.sleep(WAIT)  # a worker may be writing it right now
        data = path.read_bytes()
    lines = data.split(b"\n")
    for number, line in enumerate(lines[:-1], 1):
        try:
            entry = json.loads(line)
        except ValueError:  # not JSON, not UTF-8
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("op_code"), int):
            return f"line {number} is not a journal entry: {_shown(line)}"
    if lines[-1]:
        return f"line {len(lines)} was left unfinished: {_shown(lines[-1])}"
    return None


def _shown(line: bytes) -> str:
    text = line.decode("utf-8", errors="replace")
    return repr(text if len(text) <= 40 else text[:40] + "...")
