"""Faults of the machine as one line, exit 2: an --out that cannot be created or written
(checked before any data is read), a full disk mid-run (pipeline.faults, pipeline.cli)."""

from __future__ import annotations

import errno
import re

import pytest

from pipeline import faults
from pipeline.cli import run_cli
from pipeline.train import main


def _train(args, capsys):
    code = main([str(a) for a in args])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("out", "message"),
    [
        ("/proc/run", r"cannot create --out /proc/run: /proc is not writable"),
        ("/proc/self/x/y", r"cannot create --out /proc/self/x/y: /proc/self is not writable"),
        ("{tmp}/file/run", r"cannot create --out .*/file/run: .*/file is a file, not a folder"),
    ],
)
def test_an_out_folder_that_cannot_be_created_fails_before_the_data(
    tmp_path, capsys, out, message
):
    (tmp_path / "file").write_text("x")
    out = out.format(tmp=tmp_path)
    # no --data-dir: the folder is checked before any data is looked for
    code, err = _train(["covid", "--out", out], capsys)
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err


def test_a_read_only_out_folder_is_one_line(tmp_path, monkeypatch, capsys):
    """A read-only mount, simulated: the probe folder cannot be made (tests may run as root)."""

    def read_only(**kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(kwargs["dir"]))

    monkeypatch.setattr(faults.tempfile, "mkdtemp", read_only)
    out = tmp_path / "ro" / "run"
    code, err = _train(["covid", "--out", out], capsys)
    assert code == 2 and err.count("\n") == 1
    assert f"cannot create --out {out}: {tmp_path} is not writable (Read-only file system)" in err
    assert not (tmp_path / "ro").exists()


def test_a_writable_out_folder_leaves_no_probe(tmp_path):
    faults.check_writable(tmp_path / "a" / "b")
    faults.check_writable(tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            OSError(errno.ENOSPC, "No space left on device", "/runs/x/oof.csv"),
            r"No space left on the disk while writing /runs/x/oof.csv: free some space",
        ),
        (
            OSError(errno.EDQUOT, "Disk quota exceeded", "/runs/x/a.ckpt"),
            r"writing /runs/x/a.ckpt",
        ),
        (
            OSError(errno.EROFS, "Read-only file system", "/mnt/r"),
            r"cannot write /mnt/r: read-only",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/d/t.csv"),
            r"cannot access /d/t.csv: permission denied",
        ),
    ],
)
def test_a_full_disk_mid_run_is_one_line_naming_the_path(capsys, error, message):
    def command():
        raise error

    assert run_cli(command) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and re.search(message, err), err


def test_other_os_errors_stay_bugs():
    def command():
        raise OSError(errno.EBADF, "Bad file descriptor")

    with pytest.raises(OSError, match="Bad file descriptor"):
        run_cli(command)


@pytest.mark.parametrize("write", ["json", "npy"])
def test_a_write_that_fills_the_disk_names_its_file(tmp_path, monkeypatch, capsys, write):
    """The system's ENOSPC names no file (it comes from a write or an fsync of an open file):
    the one line names the file being written, and nothing is left of it."""
    import numpy as np

    from pipeline import io

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(io.os, "fsync", full)
    monkeypatch.setattr(np, "save", lambda *a, **k: full())
    path = tmp_path / "run" / f"metrics.{write}"

    def command():
        io.write_json(path, {"a": 1}) if write == "json" else io.write_npy(path, [1.0])

    assert run_cli(command) == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: No space left on the disk while writing {path}: free some space, or write to "
        "another disk (--out).\n"
    )
    assert list(path.parent.iterdir()) == []
