"""Faults of the machine rather than of the inputs, as errors for people: an output folder that
cannot be created or written (under /proc, on a read-only mount, no permission), a full disk.

`check_writable` runs before any data is loaded, so such a folder fails at once and leaves
nothing behind; `os_fault` words an OSError that happens later (the disk fills up mid-run) as
one line naming the path, for pipeline.cli.
"""

from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

from pipeline.errors import UserError

FULL = (errno.ENOSPC, errno.EDQUOT)
DENIED = (errno.EACCES, errno.EPERM, errno.EROFS)


def check_writable(path: str | os.PathLike, flag: str = "--out") -> None:
    """UserError unless `path` is a folder we may write in, or one we may create: a probe
    folder is made and removed in it or in its nearest existing parent."""
    path = parent = Path(path)
    verb = "write"
    try:
        if path.exists() and not path.is_dir():
            return  # the command's own folder check says what to do about a file
        parent = path
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        verb = "write" if parent == path else "create"
        if not parent.is_dir():
            raise UserError(f"cannot {verb} {flag} {path}: {parent} is a file, not a folder.")
        os.rmdir(tempfile.mkdtemp(prefix=".write-check-", dir=parent))
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UserError(
            f"cannot {verb} {flag} {path}: {parent} is not writable ({reason}); choose a folder "
            "you may write to."
        ) from None


def os_fault(exc: OSError) -> UserError | None:
    """One line for a full disk or a path we may not write; None for other OSErrors (bugs)."""
    where = exc.filename or "a file of the run"
    if exc.errno in FULL:
        return UserError(
            f"No space left on the disk while writing {where}: free some space, or write to "
            "another disk (--out)."
        )
    if exc.errno == errno.EROFS:
        return UserError(f"cannot write {where}: read-only file system; choose another --out.")
    if exc.errno in DENIED:
        return UserError(
            f"cannot access {where}: permission denied; fix its permissions or use another path."
        )
    return None
