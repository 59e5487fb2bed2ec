"""Several `python -m pipeline.tune` processes on one study: exact totals, no lock errors, a
SIGKILLed worker's trial retried on restart, PostgreSQL with a server started here."""

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from pipeline.tune.storage import open_storage
from tests.conftest import ROOT

# two workers on a 2-core machine: one thread each (oversubscribed cores slow torch ~10x)
QUICK = [
    "--threads",
    "1",
    "train.epochs=4",
    "train.patience=0",
    "cv.folds=2",
    "cv.baseline=false",
    "model.hidden=[32]",
]
SPACE = "optim.lr: {low: 1.0e-3, high: 3.0e-2, log: true}\nmodel.dropout: {low: 0.0, high: 0.3}\n"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)

pytestmark = pytest.mark.slow


def start(demo_dir, out, *extra):
    space = out.parent / "space.yaml"
    space.write_text(SPACE)
    cmd = [
        sys.executable,
        "-m",
        "pipeline.tune",
        "demo",
        "--data-dir",
        demo_dir,
        "--out",
        out,
        "--space",
        space,
        *QUICK,
        *extra,
    ]
    return subprocess.Popen(
        [str(c) for c in cmd],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def finish(proc, timeout=240):
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err
    assert "database is locked" not in err and "Traceback" not in err, err
    return out, err


def load(url):
    storage = open_storage(url, heartbeat=60) if url.startswith("journal:") else url
    return optuna.load_study(study_name="demo", storage=storage)


def assert_exact(study, n):
    trials = study.get_trials()
    finished = [t for t in trials if t.state in FINISHED]
    assert len(finished) == n, [(t.number, t.state, t.user_attrs.get("reason")) for t in trials]
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    return finished


def storage_url(kind, out):
    return (
        f"journal:{out.parent / 'journal.log'}"
        if kind == "journal"
        else f"sqlite:///{out / 'study.db'}"
    )


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_workers_share_one_study_and_stop_at_exactly_n_trials(kind, demo_dir, tmp_path):
    out = tmp_path / "run"
    url = storage_url(kind, out)
    extra = ["--trials", 4, "--heartbeat", 2, "--top-k", 0]
    extra += ["--storage", url, "--no-final"] if kind == "journal" else []
    out.mkdir()
    workers = [start(demo_dir, out, *extra) for _ in range(2)]
    results = [finish(w) for w in workers]
    finished = assert_exact(load(url), 4)
    assert len({t.user_attrs["worker"] for t in finished}) == 2  # both did work
    if kind == "sqlite":
        # the worker that finished the last trial wrote the final fit; the other one said so
        summaries = [stdout for stdout, _ in results if "best trial" in stdout]
        assert len(summaries) == 1, results
        assert (out / "submission.csv").is_file() and (out / "best.yaml").is_file()


@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_a_worker_killed_mid_trial_resumes_without_losing_a_completed_trial(
    kind, demo_dir, tmp_path
):
    out = tmp_path / "run"
    url = storage_url(kind, out)
    # long enough trials (120 epochs) to be caught running; no pruning, no final fit
    extra = ["--trials", 2, "--heartbeat", 1, "--pruner", "none", "--no-final", "train.epochs=120"]
    extra += ["--storage", url] if kind == "journal" else []
    out.mkdir()
    worker = start(demo_dir, out, *extra)
    deadline = time.monotonic() + 180
    while True:  # wait for a completed trial and one in the middle of training
        assert worker.poll() is None, worker.communicate()[1]
        assert time.monotonic() < deadline, "no trial completed in time"
        with contextlib.suppress(Exception):  # the storage may not exist yet
            trials = load(url).get_trials()
            done = {t.number: t.value for t in trials if t.state == TrialState.COMPLETE}
            running = [
                t.number for t in trials if t.state == TrialState.RUNNING and t.intermediate_values
            ]
            if done and running:
                break
        time.sleep(0.05)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    assert load(url).trials[running[0]].state == TrialState.RUNNING  # left behind by the kill

    finish(start(demo_dir, out, *extra))
    study = load(url)
    finished = assert_exact(study, 2)
    trials = study.get_trials()
    assert {n: trials[n].value for n in done} == done  # no completed trial lost
    assert trials[running[0]].state == TrialState.FAIL
    retried = [t for t in finished if t.system_attrs.get("failed_trial") == running[0]]
    assert len(retried) == 1  # the killed trial ran again, with its parameters
    assert retried[0].params == trials[running[0]].params


# --- PostgreSQL --------------------------------------------------------------------------------


def _pg_bin(name):
    found = shutil.which(name)
    if found:
        return found
    for folder in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (folder / name).is_file():
            return str(folder / name)
    return None


@pytest.fixture(scope="module")
def postgres_url():
    """A throwaway PostgreSQL server on a free local port (skipped where none can start)."""
    pytest.importorskip("psycopg2", reason="psycopg2-binary is not installed")
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not (initdb and pg_ctl):
        pytest.skip("PostgreSQL server binaries (initdb, pg_ctl) not found; see .ci/postgres.sh")
    root = Path(tempfile.mkdtemp(prefix="tune-pg-"))
    as_user = []
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to start the server")
        os.chown(root, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data, log = root / "data", root / "server.log"
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    try:
        subprocess.run(
            [*as_user, initdb, "-D", data, "-U", "tune", "--auth=trust", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            [*as_user, pg_ctl, "-D", data, "-o", options, "-l", log, "-w", "start"],
            check=True,
            capture_output=True,
            timeout=60,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"could not start a PostgreSQL server: {exc}")
    yield f"postgresql+psycopg2://tune@127.0.0.1:{port}/postgres"
    subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "stop"], capture_output=True)
    shutil.rmtree(root, ignore_errors=True)


def test_two_workers_on_postgresql_stop_at_exactly_n_trials(postgres_url, demo_dir, tmp_path):
    """Workers on many machines share one database; here two processes, each its own --out."""
    extra = ["--storage", postgres_url, "--trials", 4, "--heartbeat", 2, "--top-k", 0]
    outs = [tmp_path / f"machine{i}" for i in range(2)]
    for out in outs:
        out.mkdir()
    workers = [start(demo_dir, out, *extra) for out in outs]
    for w in workers:
        finish(w)
    finished = assert_exact(load(postgres_url), 4)
    assert len({t.user_attrs["worker"] for t in finished}) == 2
    assert sum((out / "submission.csv").is_file() for out in outs) == 1
