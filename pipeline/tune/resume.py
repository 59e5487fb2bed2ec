"""Which folder a tuning run writes to, what it reads, and what --overwrite removes.

Without --out, a tuning run continues the newest `runs/<competition>/tune-*` folder whose
tune.json names the same competition, study and storage; when there is none, it starts
`runs/<competition>/tune-<time>/`. So the same command resumes after a crash or Ctrl-C, and
`--trials 100` after a finished 50-trial study extends it, its files all in one folder. A study
that has ended (its final fit written) with at least --trials finished trials is not run again:
the same command prints its summary and says how to add trials (`finished_summary`).
Without --data-dir, a folder that is continued reads the data folder its provenance.json
names (written when the study starts).

--overwrite starts a fresh study: the old study (in the folder's SQLite file, or the --study in
--storage) and the folder's files are deleted before the first trial, once the new storage has
opened and tune.json is written: until then they are only moved aside (`.<name>.old-<pid>`),
moved back if anything fails, and by the next run if the process was killed there
(`restore_overwritten`: the new folder has no tune.json yet). Without --out it starts a new
folder and continues none. Extra workers of that study join without --overwrite.

A storage that can't be opened (a corrupt SQLite file, a journal of garbage) fails before --out
is created or changed: a --storage first of all, the default SQLite file in --out as soon as
the folder is there.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import optuna
from optuna.storages import BaseStorage

from pipeline.io import default_run_dir
from pipeline.run.folder import RUN_NAMES, alive, not_a_run, sibling
from pipeline.tune.storage import default_url, open_storage, shown_url

TUNE_NAMES = frozenset({"tune.json", "study.db", "trials"})  # only a tuning run writes these
RUNS = Path("runs")  # the default folder of every run, as in pipeline.train


def choose_dir(
    out: Path | None,
    competition: str,
    study: str,
    storage: str | None,
    trials: int,
    overwrite: bool,
    root: Path = RUNS,
) -> Path:
    """--out, or the folder this command continues (module comment), or a new one."""
    if out is not None:
        return out
    folder = (
        None if overwrite else resumable(root / competition, competition, study, storage, trials)
    )
    if folder is not None:
        print(
            f"no --out: continuing {folder}, the newest unfinished tuning run of {competition} "
            f"(study {study!r}); give --out for another folder.",
            file=sys.stderr,
            flush=True,
        )
        return folder
    path = default_run_dir(root, competition)
    return path.with_name(f"tune-{path.name}")


def resumable(
    folder: Path, competition: str, study: str, storage: str | None, trials: int
) -> Path | None:
    for candidate in sorted(folder.glob("tune-*"), key=lambda p: p.name, reverse=True):
        info = _tune_json(candidate)
        if info is None or (info.get("competition"), info.get("study")) != (competition, study):
            continue
        if info.get("storage") != shown_url(storage or default_url(candidate)):
            continue
        return candidate
    return None


def finished_summary(out_dir: Path, trials: int) -> dict | None:
    """The summary tune.json holds when the study in out_dir has ended (its final fit was
    written) with at least `trials` finished trials; None while there is more to do."""
    info = _tune_json(out_dir)
    if info is None or not isinstance(info.get("final"), dict):
        return None
    finished = (info.get("counts") or {}).get("finished", 0)
    if not isinstance(finished, int) or finished < trials:
        return None
    try:
        info["reasons"] = Counter(info.get("reasons") or {})
    except (TypeError, ValueError):
        info["reasons"] = Counter()
    needed = ("competition", "study", "storage", "metric", "counts", "top", "best", "out_dir")
    return info if all(k in info for k in needed) else None


def _tune_json(folder: Path) -> dict | None:
    try:
        info = json.loads((folder / "tune.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


# what the block of `opened` writes before tune.json (which it writes last)
BEGUN = frozenset(
    {"study.db", "study.db-wal", "study.db-shm", "study.db-journal", "provenance.json"}
)


def restore_overwritten(out_dir: Path, say: Callable[[str], None]) -> None:
    """An --overwrite that was killed before its new study was in place (the new folder has no
    tune.json; it holds at most the SQLite file it began) leaves the old folder aside: it is
    put back. Other leftovers are pipeline.run.folder.repair_leftovers' to judge."""
    for aside in sorted(out_dir.parent.glob(f".{out_dir.name}.old-*")):
        pid = aside.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid() or alive(int(pid)):
            continue
        if not out_dir.is_dir() or (out_dir / "tune.json").exists():
            continue  # nothing in its place, or the overwrite had finished
        if {p.name for p in out_dir.iterdir()} - BEGUN:
            continue
        _remove_made(out_dir)
        if out_dir.exists():
            continue
        os.rename(aside, out_dir)
        say(
            f"moved {aside} back to {out_dir}: the study that process {pid} was replacing "
            "with --overwrite when it stopped, before its new study was in place."
        )


def check_overwritable(out_dir: Path) -> None:
    """--overwrite empties only a folder a run of this project wrote (a tuning or a training run),
    never one that holds your own files."""
    names = {p.name for p in out_dir.iterdir() if not p.name.startswith(".")}
    if not (names & TUNE_NAMES or names <= RUN_NAMES):
        raise not_a_run(out_dir)


@contextlib.contextmanager
def opened(
    out_dir: Path, url: str, explicit: bool, heartbeat: int, overwrite: bool
) -> Iterator[tuple[BaseStorage, bool]]:
    """(storage, replaced) for the block that writes the first files of a tuning run; the
    storage is opened before --out is created or changed, the old folder (--overwrite) deleted
    only when the block ends well (the module's first comment). `replaced`: there was one."""
    storage = open_storage(url, heartbeat) if explicit else None
    aside = None
    if overwrite and out_dir.is_dir() and any(out_dir.iterdir()):
        aside = sibling(out_dir, "old")
        shutil.rmtree(aside, ignore_errors=True)
        os.rename(out_dir, aside)
    made = not out_dir.exists()
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        if storage is None:
            storage = open_storage(url, heartbeat)
        yield storage, aside is not None
    except BaseException:
        if aside is not None:  # the folder is this process's own since the old one moved aside
            shutil.rmtree(out_dir, ignore_errors=True)
            os.rename(aside, out_dir)
        elif made:
            _remove_made(out_dir)
        raise
    if aside is not None:
        shutil.rmtree(aside, ignore_errors=True)


def _remove_made(out_dir: Path) -> None:
    """The folder `opened` made, with the files it may have begun (nobody else's)."""
    for name in ("tune.json", *BEGUN):
        (out_dir / name).unlink(missing_ok=True)
    with contextlib.suppress(OSError):  # not empty: a second worker's files, its folder now
        out_dir.rmdir()


def drop_study(storage: BaseStorage, name: str) -> bool:
    """--overwrite: delete study `name` from the storage; False when there was none."""
    try:
        optuna.delete_study(study_name=name, storage=storage)
    except KeyError:
        return False
    return True
