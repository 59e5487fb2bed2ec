"""Storages: the SQLite WAL switch and the table race retried, the journal's own heartbeat."""

import contextlib
import re
import sqlite3
import threading
import time

import optuna
import pytest
import sqlalchemy.exc
from optuna.trial import TrialState

from pipeline.errors import UserError
from pipeline.tune import journal
from pipeline.tune import storage as tune_storage
from pipeline.tune.storage import fail_stale_trials, open_storage


def test_a_worker_that_finds_the_sqlite_file_locked_retries_the_wal_switch(tmp_path, monkeypatch):
    """Workers starting together race to switch a new SQLite file to WAL; SQLite answers the
    loser 'database is locked' at once. The loser retries; a lock that never goes away ends in
    one readable line; a file already in WAL mode is not switched again."""
    real_connect = sqlite3.connect
    switches = []
    losses = {"left": 2}

    class Busy:  # a connection whose switch to WAL loses the race losses["left"] times
        def __init__(self, db):
            self.db = db

        def execute(self, sql):
            if sql == "PRAGMA journal_mode=WAL":
                switches.append(sql)
                if losses["left"] > 0:
                    losses["left"] -= 1
                    raise sqlite3.OperationalError("database is locked")
            return self.db.execute(sql)

        def close(self):
            self.db.close()

    monkeypatch.setattr(tune_storage.time, "sleep", lambda s: None)
    monkeypatch.setattr(tune_storage.sqlite3, "connect", lambda *a, **k: Busy(real_connect(*a)))
    path = tmp_path / "study.db"
    tune_storage._sqlite_wal(path)
    assert len(switches) == 3
    with contextlib.closing(real_connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    tune_storage._sqlite_wal(path)  # already WAL: no switch, so no race to lose
    assert len(switches) == 3

    losses["left"] = 10**9
    clock = iter(range(0, 10**6, 7))  # seconds passing between attempts
    monkeypatch.setattr(tune_storage.time, "monotonic", lambda: next(clock))
    with pytest.raises(UserError, match="stayed locked by another process for 60 s"):
        tune_storage._sqlite_wal(tmp_path / "never.db", timeout=60)


def test_a_worker_that_loses_the_race_to_create_the_tables_retries(monkeypatch):
    """Two workers starting on a fresh PostgreSQL database both create Optuna's tables; the
    loser sees 'relation "studies" already exists' and must simply open the storage again."""
    calls = []

    def make():
        calls.append(1)
        if len(calls) == 1:
            raise sqlalchemy.exc.ProgrammingError(
                "CREATE TABLE studies", {}, Exception('relation "studies" already exists')
            )
        return "storage"

    monkeypatch.setattr(tune_storage.time, "sleep", lambda s: None)
    assert tune_storage._retry(make, "postgresql+psycopg2://u@h/db") == "storage"
    assert len(calls) == 2

    def broken():
        raise sqlalchemy.exc.ProgrammingError("SELECT", {}, Exception("syntax error"))

    with pytest.raises(sqlalchemy.exc.ProgrammingError):  # other programming errors are bugs
        tune_storage._retry(broken, "postgresql+psycopg2://u@h/db")


def test_a_journal_trial_whose_heartbeat_stopped_is_failed_and_queued_again(tmp_path):
    """The journal storage has no heartbeat in Optuna; trials stamp their own."""
    url = f"journal:{tmp_path / 'journal.log'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat=1), study_name="demo")
    alive, dead = study.ask(), study.ask()
    for trial in (alive, dead):
        trial.suggest_float("x", 0, 1)
    alive.set_user_attr("heartbeat", time.time())
    dead.set_user_attr("heartbeat", time.time() - 10)
    assert fail_stale_trials(study, native=False, grace=3) == [dead.number]
    trials = study.get_trials()
    assert [t.state for t in trials] == [TrialState.RUNNING, TrialState.FAIL, TrialState.WAITING]
    assert trials[2].params == trials[1].params and trials[2].system_attrs["failed_trial"] == 1
    assert fail_stale_trials(study, native=False, grace=3) == []  # only once


# -- storages that cannot be opened: one line ----------------------------------------------------
def _not_a_database(tmp_path):
    path = tmp_path / "study.db"
    path.write_bytes(b"this is not an SQLite file\n" * 200)
    return (
        f"sqlite:///{path}",
        r"Cannot open --storage sqlite:///.*study.db as an SQLite database \(file is not a database\)",
    )


def _journal(text: bytes, message: str):
    """A journal file holding `text`, and the reason its error names."""

    def make(tmp_path):
        (tmp_path / "j.log").write_bytes(text)
        return (
            f"journal:{tmp_path / 'j.log'}",
            r"Cannot open --storage journal:.*j\.log as an "
            rf"Optuna journal file \({message}\); give another path",
        )

    return make


ENTRY = b'{"op_code":0,"worker_id":"w","study_name":"s","directions":[1]}\n'
GARBAGE_LINE = _journal(b"garbage\n", "line 1 is not a journal entry: 'garbage'")
UNFINISHED = _journal(b"garbage", "line 1 was left unfinished: 'garbage'")  # nobody finishes it
BAD_STORAGES = {
    "sqlite-text": _not_a_database,
    "sqlite-folder": lambda tmp: (
        f"sqlite:///{tmp}",
        r"Cannot open --storage sqlite:///.* as an SQLite database",
    ),
    "journal-folder": lambda tmp: (
        f"journal:{tmp}",
        r"Cannot open --storage journal:.* as an Optuna journal file",
    ),
    "journal-text": _journal(b"{not json\n" * 3, "line 1 is not a journal entry: '{not json'"),
    # one garbage line: Optuna takes it for a line another worker is writing, and opens the file
    "journal-garbage-line": GARBAGE_LINE,
    "journal-unfinished-line": UNFINISHED,
    "journal-empty-line": _journal(ENTRY + b"\n", "line 2 is not a journal entry: ''"),
    "journal-json-list": _journal(ENTRY + b"[1]\n", r"line 2 is not a journal entry: '\[1\]'"),
    "journal-not-utf8": _journal(b"\xff\xfe\n", "line 1 is not a journal entry: '.*'"),
    "journal-unknown-op": _journal(
        b'{"op_code": 99}\n', r"an entry Optuna cannot replay: AssertionError Should not reach\."
    ),
    "journal-bad-entry": _journal(
        b'{"op_code": 4}\n', "an entry Optuna cannot replay: KeyError 'study_id'"
    ),
}


@pytest.mark.parametrize("storage", BAD_STORAGES.values(), ids=BAD_STORAGES)
def test_a_storage_that_is_not_a_database_is_one_line(tmp_path, storage, monkeypatch):
    monkeypatch.setattr(journal, "WAIT", 0.01)
    url, message = storage(tmp_path)
    with pytest.raises(UserError, match=message) as caught:
        open_storage(url, heartbeat=60)
    assert "\n" not in str(caught.value)


def test_a_journal_line_another_worker_is_writing_is_waited_for(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "WAIT", 0.5)
    path = tmp_path / "j.log"
    path.write_bytes(ENTRY + ENTRY[:20])  # the second entry half written
    rest = threading.Timer(0.1, lambda: path.open("ab").write(ENTRY[20:]))
    rest.start()
    storage = open_storage(f"journal:{path}", heartbeat=60)
    rest.join()
    assert [s.study_name for s in storage.get_all_studies()] == ["s"]


@pytest.mark.parametrize(
    "storage", [_not_a_database, GARBAGE_LINE, UNFINISHED], ids=["sqlite", "garbage", "unfinished"]
)
def test_tune_with_a_bad_storage_exits_2_before_it_creates_out(
    demo_dir, tmp_path, capsys, storage, monkeypatch
):
    from pipeline.tune.cli import main

    monkeypatch.setattr(journal, "WAIT", 0.01)
    url, message = storage(tmp_path)
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {low: 1.0e-3, high: 1.0e-2, log: true}\n")
    argv = [
        "demo",
        "--data-dir",
        demo_dir,
        "--out",
        tmp_path / "run",
        "--space",
        space,
        "--storage",
        url,
        "--trials",
        "1",
    ]
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert re.search(message, err), err
    assert not (tmp_path / "run").exists()  # no folder, no tune.json
