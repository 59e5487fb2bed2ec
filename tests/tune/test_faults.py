"""pipeline.tune on a full disk: one line and exit 2, a fresh study that holds no result leaves
no folder, a study with finished trials keeps them whole (no half-written trial folder), and
Optuna's own failures (a storage error, its heartbeat thread) never print a traceback."""

from __future__ import annotations

import contextlib
import errno
import io
import json
import re
import shlex
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import optuna
import pytest
import sqlalchemy.exc

from pipeline.tune import main
from pipeline.tune.storage import quiet_storage_threads, storage_fault

ROOT = Path(__file__).resolve().parents[2]
QUICK = ["--quiet", "train.epochs=2", "cv.folds=2", "cv.baseline=false", "model.hidden=[16]"]
SPACE = "optim.lr: {low: 3.0e-3, high: 3.0e-2, log: true}\n"


def tune(*argv) -> tuple[int, str]:
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, err.getvalue()


def test_a_trial_file_on_a_full_disk_stops_the_study_in_one_line(demo_dir, tmp_path, monkeypatch):
    """The first trial's predictions cannot be written (ENOSPC, which names no file): the line
    names the file, the study stops at once, and the fresh folder is gone."""

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full)
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    out = tmp_path / "tune"
    code, err = tune("demo", "--data-dir", demo_dir, "--space", space, "--out", out, *QUICK)
    assert code == 2 and err.count("\n") == 1, err
    assert re.match(r"error: No space left on the disk while writing \S+/trials/\S+/oof\.npy", err)
    assert not out.exists() and list(tmp_path.iterdir()) == [space]


def _full_storage_error() -> optuna.exceptions.StorageInternalError:
    """What Optuna raises when SQLite cannot commit on a full disk, chained as it chains it."""
    try:
        try:
            try:
                raise sqlite3.OperationalError("database or disk is full")
            except sqlite3.OperationalError as exc:
                raise sqlalchemy.exc.OperationalError("COMMIT", {}, exc) from exc
        except sqlalchemy.exc.OperationalError as exc:
            raise optuna.exceptions.StorageInternalError("An exception is raised ...") from exc
    except optuna.exceptions.StorageInternalError as exc:
        return exc


def test_a_storage_error_is_one_line_even_behind_optunas_assertion():
    url = "sqlite:////data/tune/study.db"
    fault = storage_fault(_full_storage_error(), url)
    assert str(fault) == (
        "No space left on the disk while writing /data/tune/study.db (database or disk is "
        "full): free some space, then run the same command again."
    )
    try:  # Optuna's trial loop asserts while it handles the storage's error
        try:
            raise _full_storage_error()
        except optuna.exceptions.StorageInternalError:
            raise AssertionError("Should not reach.")  # noqa: B904
    except AssertionError as masked:
        assert str(storage_fault(masked, url)) == str(fault)
    assert storage_fault(AssertionError("a bug"), url) is None


def test_a_thread_that_meets_the_storage_error_ends_without_a_traceback(monkeypatch):
    shown: list[BaseException] = []  # what reaches the hook that prints a thread's traceback
    monkeypatch.setattr(threading, "excepthook", lambda args: shown.append(args.exc_value))

    def run(exc: BaseException) -> None:
        def target() -> None:
            raise exc

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()

    bug = ValueError("a bug in a thread")
    with quiet_storage_threads():
        run(_full_storage_error())  # Optuna's heartbeat thread on a full disk
        run(bug)
    assert shown == [bug]


CHECK = """
import json, sys, optuna
from pathlib import Path
out = Path(sys.argv[1])
found = {"exists": out.exists()}
if out.exists():
    study = optuna.load_study(study_name="demo", storage=f"sqlite:///{out / 'study.db'}")
    states = [t.state.name for t in study.trials]
    found.update(states=states, files=sorted(p.name for p in out.iterdir()))
    found["trials"] = {
        p.name: sorted(f.name for f in p.iterdir()) for p in (out / "trials").glob("*")
    }
print(json.dumps(found))
"""


def _can_mount(tmp_path: Path) -> bool:
    if shutil.which("unshare") is None or not sys.platform.startswith("linux"):
        return False
    probe = subprocess.run(
        ["unshare", "-rm", "sh", "-c", f"mount -t tmpfs -o size=64k tmpfs {tmp_path}"],
        capture_output=True,
    )
    return probe.returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("size", ["260k", "600k"])
def test_a_study_on_a_really_full_disk(demo_dir, tmp_path, size):
    """A small tmpfs (a user namespace's own mount): the disk fills while the study is
    created or while its trials run. One line, exit 2; what is left is a study whose finished
    trials and trial folders are whole, or nothing."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    if not _can_mount(mount):
        pytest.skip("no unprivileged tmpfs mount here (unshare -rm)")
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    out = mount / "tune"
    command = [sys.executable, "-m", "pipeline.tune", "demo", "--data-dir", str(demo_dir)]
    command += ["--space", str(space), "--out", str(out), "--trials", "3", *QUICK]
    (tmp_path / "check.py").write_text(CHECK)
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {mount} && "
        f"{' '.join(map(shlex.quote, command))} 2>{tmp_path / 'err'}; "
        f"echo $? >{tmp_path / 'code'}; "
        f"{sys.executable} {tmp_path / 'check.py'} {out} >{tmp_path / 'found'}"
    )
    subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=ROOT, check=True)
    code, err = int((tmp_path / "code").read_text()), (tmp_path / "err").read_text()
    found = json.loads((tmp_path / "found").read_text())
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: No space left on the disk while writing "), err
    if found["exists"]:  # kept: it holds finished trials, each trial folder whole
        assert "COMPLETE" in found["states"] or "PRUNED" in found["states"], found
        assert {"tune.json", "study.db"} <= set(found["files"])
        for name, files in found["trials"].items():
            assert not name.startswith(".") and files == sorted(
                ["folds.npy", "oof.npy", "test.npy", "trial.json"]
            ), found
