"""Blend members: a finished run's out-of-fold and test predictions read back from its folder,
with what decides whether runs can be blended (competition, task, rows, ids, folds).

What a folder holds:
- a run folder (pipeline.train, pipeline.blend, a tune folder's final fit; pipeline/run/fit.py):
  metrics.json (the keys of `run_info`), oof.csv (id, fold, target, prediction) and the
  predictions in the engine's space: oof_pred.npy / test_pred.npy (regression values on the
  model's target scale) or oof_proba.npy / test_proba.npy (class probabilities);
- a trial folder `trials/<n>/` of pipeline.tune (pipeline/tune/objective.py): oof.npy,
  test.npy, folds.npy (the fold of each row) and trial.json (run_info's keys, the trial's
  value and parameters, a digest of the training ids); trials saved before folds.npy and
  trial.json existed borrow their tune folder's final fit's rows and folds;
- a tune folder: its saved trials, best first (`top_k` of them).

Each folder is read through one open handle of it (`Snapshot`): pipeline/run/folder.py moves a
finished run in with one rename, and a tune writes each trial folder whole and renames it into
place, so the files read through one handle are those of one run, never the out-of-fold
predictions of one and the test predictions of another. A folder that vanishes or changes
while it is read is read again; if it keeps changing, it is refused as being written.
A member also carries what its run read (provenance.json's data files, the digests of its
training and test ids), which pipeline/ensemble/checks.py holds against the blend's data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import numpy as np
import pandas as pd

from pipeline.errors import DataError, UserError

TRIAL_FILES = ("oof.npy", "test.npy")  # what every saved trial holds
READ_TRIES = 6  # reads of a folder that changes under the reader before it is refused
T = TypeVar("T")


def run_info(competition, cfg, n_train: int, n_test: int, ids=None, test_ids=None) -> dict:
    """What a run's metrics.json (and a trial's trial.json) says about its rows and folds;
    with the ids, their digests too (the rows and their order, without a copy of them)."""
    task, metric = competition.task, competition.metric
    info = {
        "competition": competition.name,
        "metric": metric.name,
        "greater_is_better": metric.greater_is_better,
        "task": {"kind": task.kind, "n_classes": task.n_classes},
        "cv": {"strategy": cfg.cv.strategy, "folds": cfg.cv.folds, "gap": cfg.cv.gap},
        "seed": cfg.seed,
        "n_train": int(n_train),
        "n_test": int(n_test),
    }
    if ids is not None:
        info["ids_sha256"] = ids_digest(ids)
    if test_ids is not None:
        info["test_ids_sha256"] = ids_digest(test_ids)
    return info


def ids_digest(ids) -> str:
    """sha256 of the ids as text, in row order: a trial's rows without a copy of the ids."""
    text = "\n".join(pd.Series(np.asarray(ids)).astype(str))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Member:
    """One blend member's predictions of the training rows (out of fold) and the test rows."""

    name: str
    path: Path | None  # None: a reference fitted by the blend itself
    info: dict  # run_info's keys
    oof: np.ndarray  # (n,) values or (n, K) probabilities, float64; NaN where no fold validated
    test: np.ndarray
    folds: np.ndarray  # fold of each row, -1: never validated
    ids: np.ndarray | None = None  # the rows' ids as text (oof.csv)
    ids_sha256: str | None = None  # the digest, where only that was saved (trials)
    target: np.ndarray | None = None  # oof.csv's target, on the competition's scale
    value: float | None = None  # a trial's objective value, for ranking
    # what the run read: provenance.json's {"dir", "files": {name: {"sha256", ...}}}, and
    # where that file is (the run's folder, or a trial's tune folder); None: not recorded
    data: dict | None = None
    data_source: Path | None = None

    @property
    def test_ids_sha256(self) -> str | None:
        return self.info.get("test_ids_sha256")


class Changed(Exception):
    """A file of the folder vanished while it was read: the folder is being replaced."""


class Snapshot:
    """The files of one folder, read through one open handle of it (the module's comment).
    Where the system cannot open files relative to a folder handle, by path."""

    def __init__(self, folder: Path, fd: int | None):
        self.folder, self.fd = folder, fd

    def path(self, name: str) -> Path:
        return self.folder / name

    def is_file(self, name: str) -> bool:
        try:
            st = os.stat(name, dir_fd=self.fd) if self.fd is not None else self.path(name).stat()
        except FileNotFoundError:
            return False
        return (st.st_mode & 0o170000) == 0o100000

    def open(self, name: str) -> IO[bytes]:
        try:
            if self.fd is None:
                return open(self.path(name), "rb")
            return os.fdopen(os.open(name, os.O_RDONLY, dir_fd=self.fd), "rb")
        except FileNotFoundError:
            raise Changed(name) from None

    def json(self, name: str) -> dict:
        try:
            with self.open(name) as fh:
                data = json.loads(fh.read().decode("utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{self.path(name)} cannot be read ({exc}); is the run complete?"
            ) from None
        if not isinstance(data, dict):
            raise DataError(f"{self.path(name)} is not a mapping; is the run complete?")
        return data

    def npy(self, name: str) -> np.ndarray:
        try:
            with self.open(name) as fh:
                return np.asarray(np.load(fh, allow_pickle=False), dtype=np.float64)
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(
                f"{self.path(name)} cannot be read ({exc}); is the run complete?"
            ) from None

    def oof_csv(self) -> pd.DataFrame:
        path = self.path("oof.csv")
        try:
            with self.open("oof.csv") as fh:
                frame = pd.read_csv(fh, dtype={"id": str})
        except (OSError, ValueError, pd.errors.ParserError) as exc:
            raise DataError(f"{path} cannot be read ({exc}); is the run complete?") from None
        missing = {"id", "fold", "target"} - set(frame.columns)
        if missing:
            raise DataError(f"{path} lacks the column(s) {', '.join(sorted(missing))}.")
        return frame

    def moved(self) -> bool:
        """Whether the folder was replaced or deleted since it was opened: then a file it
        lacks may have been there (a refusal for a missing file would be wrong)."""
        if self.fd is None:
            return False
        try:
            here = os.stat(self.folder)
        except FileNotFoundError:
            return True
        opened = os.fstat(self.fd)
        return opened.st_nlink == 0 or (here.st_dev, here.st_ino) != (
            opened.st_dev,
            opened.st_ino,
        )

    def provenance(self) -> dict | None:
        """provenance.json's data entry, or None where the run wrote none (or a damaged one)."""
        if not self.is_file("provenance.json"):
            return None
        try:
            data = self.json("provenance.json").get("data")
        except DataError:
            return None
        return data if isinstance(data, dict) and isinstance(data.get("files"), dict) else None


@contextlib.contextmanager
def snapshot(folder: Path) -> Iterator[Snapshot]:
    """A Snapshot of `folder`; Changed when there is no folder there (now)."""
    if os.open not in os.supports_dir_fd:
        if not folder.is_dir():
            raise Changed(str(folder))
        yield Snapshot(folder, None)
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise Changed(str(folder)) from None
    reader = Snapshot(folder, fd)
    try:
        yield reader
    except UserError:
        if reader.moved():  # a file vanished with the folder: read the new folder
            raise Changed(str(folder)) from None
        raise
    finally:
        os.close(fd)


def read_settled(read: Callable[[], T], folder: Path, what: str = "run") -> T:
    """read() again while the folder changes under it (a run moved in, a trial left the top
    k); DataError saying so if it has not settled after READ_TRIES reads."""
    for attempt in range(READ_TRIES):
        try:
            return read()
        except Changed:
            time.sleep(0.02 * 2**attempt)
    raise DataError(
        f"{what} {folder} is being written or replaced right now (its files changed while they "
        "were read); blend it when that run has finished."
    )


def load_run(folder: Path) -> Member:
    """A pipeline.train / pipeline.blend run folder as a member, its files read as one set."""
    return read_settled(lambda: _load_run(folder), folder)


def _load_run(folder: Path) -> Member:
    with snapshot(folder) as run:
        info = run.json("metrics.json")
        pairs = [("oof_pred.npy", "test_pred.npy"), ("oof_proba.npy", "test_proba.npy")]
        saved = [p for p in pairs if all(run.is_file(f) for f in p)]
        if not saved:
            raise UserError(
                f"run {folder} has no saved predictions (oof_pred.npy and test_pred.npy, or "
                "oof_proba.npy and test_proba.npy); runs of older versions lack them: train it "
                "again."
            )
        oof_file, test_file = saved[0]
        frame = run.oof_csv()
        return Member(
            name=folder.name,
            path=folder,
            info=info,
            oof=run.npy(oof_file),
            test=run.npy(test_file),
            folds=frame["fold"].to_numpy(dtype=np.int64),
            ids=frame["id"].to_numpy(dtype=str),
            target=frame["target"].to_numpy(),
            data=run.provenance(),
            data_source=run.path("provenance.json"),
        )


def is_tune_dir(folder: Path) -> bool:
    return (folder / "tune.json").is_file()


def _saved_trial(name: str) -> bool:
    """A trial folder in place: hidden names are trials being written or removed."""
    return not name.startswith(".")


def load_trial(folder: Path) -> Member:
    """A saved trial `trials/<n>/` of a tune folder as a member, its files read as one set."""
    return read_settled(lambda: _load_trial(folder), folder, "trial")


def _load_trial(folder: Path) -> Member:
    tune_dir = folder.parent.parent
    name = f"{tune_dir.name}/trial {int(folder.name) if folder.name.isdigit() else folder.name}"
    with snapshot(folder) as trial:
        missing = [f for f in TRIAL_FILES if not trial.is_file(f)]
        if missing:
            raise UserError(f"trial folder {folder} lacks {' and '.join(missing)}.")
        oof, test = trial.npy("oof.npy"), trial.npy("test.npy")
        older = not (trial.is_file("trial.json") and trial.is_file("folds.npy"))
        if older and trial.moved():
            raise Changed(str(folder))
        if not older:
            info = trial.json("trial.json")
            folds = trial.npy("folds.npy").astype(np.int64)
            with snapshot(tune_dir) as tune:
                data = tune.provenance()
            return Member(
                name,
                folder,
                info,
                oof,
                test,
                folds,
                ids_sha256=info.get("ids_sha256"),
                value=info.get("value"),
                data=data,
                data_source=tune_dir / "provenance.json",
            )
    # saved by an older version: the study's rows and folds are its final fit's, unless the
    # study searched the folds themselves
    searched = _json(tune_dir / "tune.json").get("params") or []
    if (
        any(p == "seed" or p.startswith("cv.") for p in searched)
        or not (tune_dir / "oof.csv").is_file()
    ):
        raise UserError(
            f"trial folder {folder} has no folds.npy (saved by an older pipeline.tune) and its "
            "folds cannot be taken from the tune folder's final fit; run the study again."
        )
    final = _load_run(tune_dir)
    top = {row["number"]: row["value"] for row in _json(tune_dir / "tune.json").get("top", [])}
    number = int(folder.name) if folder.name.isdigit() else None
    return Member(
        name,
        folder,
        final.info,
        oof,
        test,
        final.folds,
        ids=final.ids,
        target=final.target,
        value=top.get(number),
        data=final.data,
        data_source=final.data_source,
    )


def _json(path: Path) -> dict:
    with snapshot(path.parent) as folder:
        return folder.json(path.name)


def trial_folders(tune_dir: Path, top_k: int | None) -> list[Path]:
    """The tune folder's saved trials, best first; the first top_k of them (None: all)."""
    folders = [
        p for p in sorted((tune_dir / "trials").glob("*")) if _saved_trial(p.name) and p.is_dir()
    ]
    folders = [p for p in folders if all((p / f).is_file() for f in TRIAL_FILES)]
    if not folders:
        raise UserError(
            f"tune folder {tune_dir} holds no saved trials in trials/ (pipeline.tune keeps the "
            "--top-k best, default 5; --top-k 0 keeps none)."
        )
    tune = _json(tune_dir / "tune.json")
    sign = -1.0 if tune.get("greater_is_better", False) else 1.0
    top = {row["number"]: row["value"] for row in tune.get("top", [])}

    def value(folder: Path) -> float:
        try:
            v = _json(folder / "trial.json").get("value")
        except (Changed, DataError):  # an older trial (no trial.json), or one just removed
            v = top.get(int(folder.name)) if folder.name.isdigit() else None
        return sign * v if v is not None else np.inf  # unknown values last

    ranked = sorted(folders, key=lambda f: (value(f), f.name))
    return ranked if top_k is None else ranked[:top_k]


def load_tune(tune_dir: Path, top_k: int | None) -> list[Member]:
    """A tune folder's best saved trials, listed and read again if one leaves the top k (its
    folder removed) while they are read."""

    def read() -> list[Member]:
        folders = trial_folders(tune_dir, top_k)
        members = [_load_trial(f) for f in folders]
        if trial_folders(tune_dir, top_k) != folders:  # a trial was saved or removed meanwhile
            raise Changed(str(tune_dir))
        return members

    return read_settled(read, tune_dir, "tune folder")


def _trial_path(path: Path) -> Path:
    """`tune-x/trials/3` names the folder tune-x/trials/00003."""
    if not path.exists() and path.parent.name == "trials" and path.name.isdigit():
        padded = path.with_name(f"{int(path.name):05d}")
        if padded.is_dir():
            return padded
    return path


def load_members(paths: list[Path], top_k: int | None = None) -> list[Member]:
    """Each path as members: a run folder, a trial folder, or a tune folder's best trials."""
    members, seen = [], set()
    for given in paths:
        path = _trial_path(Path(given))
        if not path.is_dir() and not _being_replaced(path):
            raise UserError(
                f"{given} is not a folder; pass run folders (pipeline.train, "
                "pipeline.tune trials, pipeline.blend)."
            )
        if path.parent.name == "trials" and is_tune_dir(path.parent.parent):
            loaded = [load_trial(path)]
        elif is_tune_dir(path):
            loaded = load_tune(path, top_k)
        elif (path / "metrics.json").is_file() or _being_replaced(path):
            loaded = [load_run(path)]
        else:
            raise UserError(
                f"{given} is not a run folder (no metrics.json): pass folders that "
                "pipeline.train, pipeline.tune or pipeline.blend wrote."
            )
        for member in loaded:
            key = member.path.resolve()
            if key in seen:
                raise UserError(f"{member.path} is given twice; each run is one member.")
            seen.add(key)
            members.append(member)
    _unique_names(members)
    return members


def _being_replaced(path: Path) -> bool:
    """A run folder between the two renames that move a finished run in where the system has
    no one-step swap (pipeline/run/folder.py): the new or the old one waits beside it."""
    return any(path.parent.glob(f".{path.name}.partial-*")) or any(
        path.parent.glob(f".{path.name}.old-*")
    )


def _unique_names(members: list[Member]) -> None:
    """Two folders of the same name (runs/a/x, runs/b/x) are told apart by their parents."""
    names = [m.name for m in members]
    for m in members:
        if names.count(m.name) > 1 and m.path is not None:
            m.name = f"{m.path.parent.name}/{m.path.name}"
