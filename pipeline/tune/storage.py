"""Where a study lives, how workers share it, and how a crashed worker's trial is retried.

Storages (`--storage`):
- default: SQLite in the run folder (`sqlite:///<out>/study.db`), in WAL mode with a long busy
  timeout, so several processes on one machine share it without "database is locked";
- any Optuna RDB URL (`postgresql+psycopg2://...`, `mysql+pymysql://...`): workers on many
  machines share one database;
- `journal:PATH`: Optuna's append-only journal file, for many processes on one filesystem
  (also NFS, where SQLite's locking is unreliable); checked line by line (journal.py).

Crashes: a worker killed mid-trial leaves it RUNNING. RDB storages record a heartbeat for each
running trial (Optuna's own); the journal storage has none in this Optuna version, so each trial
stamps a `heartbeat` user attribute instead. A trial whose heartbeat is older than the grace
period is marked FAIL and queued again with the same parameters (RetryHeartbeatStaleTrialCallback)
before the next trial starts, by whichever worker looks first.

Exact totals: `--trials N` is the number of finished (complete or pruned) trials the study
should hold. A worker starts a trial only while finished + running < N; if two workers start
at the same moment, the trial created later sees the other one and is not run (it is marked
FAIL with reason "surplus"), so the study ends with exactly N finished trials.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import re
import socket
import sqlite3
import threading
import time
import uuid
import warnings
from datetime import datetime
from pathlib import Path

import optuna
from optuna.storages import BaseStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from pipeline.errors import UserError
from pipeline.tune.journal import open_journal

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
MAX_RETRY = 3  # a trial whose worker dies this often is given up
SQLITE_TIMEOUT = 600  # seconds a writer waits for the lock before "database is locked"

WORKER_ID = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def default_url(out_dir: Path) -> str:
    return f"sqlite:///{(out_dir / 'study.db').resolve()}"


def shown_url(url: str) -> str:
    """The URL with any password hidden, for messages."""
    if url.startswith("journal:"):
        return url
    try:
        import sqlalchemy

        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except Exception:  # a URL SQLAlchemy cannot parse: hide what sits where a password would
        return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", url)


def open_storage(url: str, heartbeat: int) -> BaseStorage:
    """An Optuna storage for `url`; ConfigError-like UserError with a fix when it cannot open."""
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    if url.startswith("journal:"):
        return open_journal(url)
    if "://" not in url:
        raise UserError(
            f"--storage {url!r} is not a storage URL; use sqlite:///PATH.db, "
            "postgresql+psycopg2://USER:PASSWORD@HOST/DB, mysql+pymysql://... or journal:PATH."
        )
    _check_url(url)
    engine_kwargs: dict = {}
    if url.startswith("sqlite"):
        path = Path(url.split(":///", 1)[-1]) if ":///" in url else None
        if path is None or str(path) in ("", ":memory:"):
            raise UserError("--storage: an in-memory SQLite database cannot be shared or resumed.")
        if not path.parent.is_dir():
            raise UserError(f"--storage {url}: the folder {path.parent} does not exist.")
        _sqlite_wal(path)
        engine_kwargs["connect_args"] = {"timeout": SQLITE_TIMEOUT}
    else:
        engine_kwargs["pool_pre_ping"] = True  # workers idle for long trials; servers drop them

    def make() -> RDBStorage:
        return RDBStorage(
            url,
            engine_kwargs=engine_kwargs,
            heartbeat_interval=heartbeat,
            grace_period=3 * heartbeat,
            heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(MAX_RETRY),
        )

    return _retry(make, url)


def _check_url(url: str) -> None:
    """SQLAlchemy's own parse of the URL, its errors as one line (a port that is no number)."""
    import sqlalchemy

    try:
        sqlalchemy.engine.make_url(url)
    except (ValueError, sqlalchemy.exc.ArgumentError) as exc:
        number = "int()" in str(exc)
        port = " (the port after HOST: must be a number, e.g. :5432)" if number else ""
        raise UserError(
            f"--storage {shown_url(url)} is not a valid URL: {_first(exc)}{port}."
        ) from None


def storage_fault(exc: BaseException, url: str) -> UserError | None:
    """One line for a storage that failed mid-study (Optuna's StorageInternalError wraps the
    database's error: a full disk, a server gone); None for any other error. Optuna may
    raise another error while it handles that one (an assertion in its trial loop when the
    trial's end cannot be stored): the storage's error is found among the causes."""
    seen: BaseException | None = exc
    while seen is not None and not isinstance(seen, optuna.exceptions.StorageInternalError):
        seen = seen.__cause__ or seen.__context__
    if seen is None:
        return None
    cause: BaseException = seen
    while cause.__cause__ is not None or getattr(cause, "orig", None) is not None:
        cause = getattr(cause, "orig", None) or cause.__cause__
    text = _first(cause)
    full = "full" in text.lower() or (isinstance(cause, OSError) and cause.errno in DISK_FULL)
    if full:
        where = url.split(":///", 1)[-1] if url.startswith("sqlite") else shown_url(url)
        return UserError(
            f"No space left on the disk while writing {where} ({text}): free some space, then "
            "run the same command again."
        )
    return UserError(
        f"The study's storage {shown_url(url)} failed ({text}); run the same command again "
        "when it works."
    )


@contextlib.contextmanager
def quiet_storage_threads():
    """Optuna's heartbeat thread dies with a traceback when the storage fails under it (a full
    disk); the trial loop meets the same failure and reports it in one line, so inside this
    block such a thread ends without a word (other errors of threads print as before)."""
    previous = threading.excepthook

    def hook(args) -> None:
        if storage_fault(args.exc_value, "") is None:
            previous(args)

    threading.excepthook = hook
    try:
        yield
    finally:
        threading.excepthook = previous


def _sqlite_wal(path: Path, timeout: float = SQLITE_TIMEOUT) -> None:
    """WAL lets readers work while one process writes (persistent in the file).

    Switching the mode needs the file to itself, and SQLite answers "database is locked" at
    once, without its busy timeout, when another worker holds it at that moment (workers that
    start together do): the switch is skipped when the file is already in WAL mode, else
    retried until `timeout`."""
    try:
        _wal(path, timeout)
    except sqlite3.DatabaseError as exc:  # not a database, a folder, no permission, ...
        raise UserError(
            f"Cannot open --storage sqlite:///{path} as an SQLite database ({_first(exc)}); "
            "give another file (a new name creates a fresh study)."
        ) from None


def _wal(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with contextlib.closing(sqlite3.connect(path, timeout=timeout)) as db:
        while True:
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                if time.monotonic() > deadline:
                    raise UserError(
                        f"--storage {path}: the SQLite file stayed locked by another process "
                        f"for {timeout:g} s; stop the other process or use another file."
                    ) from None
                time.sleep(0.05 + 0.1 * random.random())


def _retry(make, url: str, attempts: int = 6):
    """Workers that start together race to create the tables; a lost race is retried."""
    import sqlalchemy.exc

    for attempt in range(attempts):
        try:
            return make()
        except ImportError as exc:
            driver = url.split("://")[0]
            raise UserError(
                f"--storage {shown_url(url)} needs the database driver for {driver} "
                f"({exc.__cause__ or exc}); install it, e.g. pip install psycopg2-binary for "
                "postgresql+psycopg2 or pip install pymysql for mysql+pymysql."
            ) from None
        except sqlalchemy.exc.ArgumentError as exc:
            raise UserError(f"--storage {shown_url(url)} is not a valid URL: {exc}") from None
        except (
            sqlalchemy.exc.OperationalError,
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.ProgrammingError,  # PostgreSQL: 'relation "studies" already exists'
        ) as exc:
            lost_race = "already exists" in str(exc)
            if isinstance(exc, sqlalchemy.exc.ProgrammingError) and not lost_race:
                raise
            if attempt == attempts - 1 or _is_connection_error(exc):
                raise UserError(f"Cannot open --storage {shown_url(url)}: {_first(exc)}") from None
            time.sleep(0.2 + random.random())
        except sqlalchemy.exc.DatabaseError as exc:  # e.g. "file is not a database"
            raise UserError(f"Cannot open --storage {shown_url(url)}: {_first(exc)}") from None
        except optuna.exceptions.StorageInternalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2 + random.random())
    raise AssertionError("unreachable")


def _first(exc: Exception) -> str:
    """The first line of an error (of the driver's own error, for SQLAlchemy's)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _is_connection_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return any(s in text for s in ("could not connect", "connection refused", "unable to open"))


# --- study ---------------------------------------------------------------------------------------


def create_or_load(storage, name: str, direction: str, sampler, pruner) -> tuple:
    """(study, created): `created` is True for the one worker that created the study."""
    try:
        study = optuna.create_study(
            storage=storage,
            study_name=name,
            direction=direction,
            sampler=sampler,
            pruner=pruner,
        )
        return study, True
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner)
        if study.direction.name.lower() != direction:
            raise UserError(
                f"Study {name!r} in this storage was created to {study.direction.name.lower()} "
                f"its metric; this competition's metric must {direction[:8]}. Use another "
                "--study name."
            ) from None
        return study, False


def counts(study: optuna.Study) -> dict[str, int]:
    states = [t.state for t in study.get_trials(deepcopy=False)]
    return {s.name.lower(): states.count(s) for s in TrialState}


def n_finished(study: optuna.Study) -> int:
    c = counts(study)
    return c["complete"] + c["pruned"]


def holds_slot(study: optuna.Study, number: int, n_trials: int) -> bool:
    """True while trial `number` fits in the study's total: trials finished, plus those running
    that were created before it, are fewer than n_trials."""
    taken = 0
    for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING)):
        if t.state in FINISHED or t.number < number:
            taken += 1
    return taken < n_trials


# --- heartbeats for storages without them (the journal) -----------------------------------------


class Heartbeat:
    """Stamps `heartbeat` (epoch seconds) on a trial every `interval` seconds while it runs."""

    def __init__(self, trial: optuna.Trial, interval: float):
        self.trial, self.interval = trial, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True)

    def __enter__(self) -> Heartbeat:
        self.trial.set_user_attr("heartbeat", time.time())
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):  # a missed beat only delays nothing
                self.trial.set_user_attr("heartbeat", time.time())


def native_heartbeat(storage: BaseStorage) -> bool:
    return isinstance(storage, RDBStorage) and storage.heartbeat_interval is not None


def fail_stale_trials(study: optuna.Study, native: bool, grace: float) -> list[int]:
    """Mark RUNNING trials whose worker stopped beating as FAIL and queue them again.

    Storages with Optuna's heartbeat (`native`) use it; others the `heartbeat` user attribute.
    Returns the numbers of the trials this call failed (for the other storages)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if native:
            optuna.storages.fail_stale_trials(study)
            return []
        failed = []
        now = time.time()
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            if now - _last_beat(t) <= grace:
                continue
            try:
                frozen = study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            except (ValueError, RuntimeError):
                continue  # another worker finished it first
            if frozen.state == TrialState.FAIL:
                failed.append(t.number)
                RetryHeartbeatStaleTrialCallback(MAX_RETRY)(study, frozen)
        return failed


def _last_beat(trial: FrozenTrial) -> float:
    beat = trial.user_attrs.get("heartbeat")
    if isinstance(beat, (int, float)):
        return float(beat)
    start = trial.datetime_start or datetime.now()
    return start.timestamp()
