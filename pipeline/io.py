"""Atomic file writing, run folders and folder names taken from files.

Every file of a run is written to a temporary name in the same folder and renamed into place, so
a crash or Ctrl-C never leaves a half-written submission that looks valid.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pipeline.errors import UserError

MAX_NAME = 100  # characters; a name becomes a folder name (runs/<name>/, competitions/<name>/)


def check_name(name: object, what: str) -> str:
    """`name` as one folder name that stays inside the folder it is joined to (runs/,
    competitions/, data/): not empty, no path separator, not hidden (no leading dot, so no
    `..`), no control characters; UserError naming `what` otherwise."""
    text = str(name) if name is not None else ""
    ok = (
        0 < len(text) <= MAX_NAME
        and not text.startswith(".")
        and not any(sep in text for sep in ("/", "\\"))
        and text.isprintable()
        and text.strip() == text
    )
    if not ok:
        raise UserError(
            f"{what} must be a plain folder name (no '/' or '\\', no leading '.', at most "
            f"{MAX_NAME} printable characters): folders such as runs/<name>/ are made from it; "
            f"got {text!r}."
        )
    return text


@contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs) -> IO:
    """Open a temporary file beside `path`; on success it replaces `path`, on error it vanishes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        _name(exc, path, tmp)
        raise


def _name(exc: BaseException, path: Path, tmp: str) -> None:
    """An OSError of a write (a full disk: no file name of its own) names the file written,
    so the one line for it says which (pipeline.faults)."""
    if isinstance(exc, OSError) and exc.filename in (None, tmp):
        exc.filename = str(path)


def atomic_write(path: str | os.PathLike, write: Callable[[str], Any]) -> Path:
    """Call `write(tmp_path)` (for writers that want a file name), then rename into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        _name(exc, path, tmp)
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    with atomic_open(path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write(text)
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    return write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def write_csv(path: str | os.PathLike, frame) -> Path:
    """Write a pandas DataFrame without its index, atomically."""
    with atomic_open(path, "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False, lineterminator="\n")
    return Path(path)


def _json_default(obj):
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def default_run_dir(root: str | os.PathLike, name: str) -> Path:
    """runs/<name>/<timestamp>/, with a suffix when two runs start in the same second."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    base = Path(root) / name / stamp
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{stamp}-{n}")
    return path


def check_out_dir(path: str | os.PathLike, overwrite: bool) -> Path:
    """Refuse to mix a new run's files with an earlier run's, unless asked to."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"--out {path} exists and is not a folder; choose another path.")
    if path.is_dir() and any(path.iterdir()) and not overwrite:
        raise UserError(
            f"--out {path} already holds files from another run; choose a new folder or add "
            "--overwrite to replace them."
        )
    return path


def write_npy(path: str | os.PathLike, array) -> Path:
    """An .npy file written atomically."""
    import numpy as np

    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array))

    return atomic_write(path, write)
