"""Which folder and study a tuning run continues (pipeline/tune/resume.py): --overwrite starts a
fresh study, the same command without --out resumes in the same folder, Ctrl-C keeps the
finished trials."""

import contextlib
import io
import re
import signal

import optuna
import pytest
from optuna.trial import TrialState

from pipeline.errors import UserError
from pipeline.interrupts import Interrupted
from pipeline.tune import main, resume
from pipeline.tune.report import TuneProgress
from pipeline.tune.storage import default_url

QUICK = [
    "--quiet",
    "train.epochs=3",
    "train.patience=0",
    "cv.folds=2",
    "cv.baseline=false",
    "model.hidden=[32]",
    "--prune-after",
    "50",
]
SPACE = "optim.lr: {low: 3.0e-3, high: 3.0e-2, log: true}\n"


def tune(demo_dir, space, *extra, out: list | None = None):
    """(exit code, stderr) of pipeline.tune on demo; `out` collects its stdout."""
    data = ["--data-dir", demo_dir] if demo_dir is not None else []
    argv = ["demo", *data, "--space", space, *QUICK, *extra]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(a) for a in argv])
    if out is not None:
        out.append(stdout.getvalue())
    return code, stderr.getvalue()


def trials(out, *states):
    study = optuna.load_study(study_name="demo", storage=default_url(out))
    return [t for t in study.trials if not states or t.state in states]


@pytest.fixture
def space(tmp_path):
    path = tmp_path / "space.yaml"
    path.write_text(SPACE)
    return path


def test_overwrite_starts_a_fresh_study_and_deletes_the_old_files(demo_dir, space, tmp_path):
    out = tmp_path / "tune"
    assert tune(demo_dir, space, "--out", out, "--trials", 2, "--top-k", 2, "--no-final")[0] == 0
    assert len(trials(out)) == 2 and (out / "trials" / "00001").is_dir()
    argv = ["--out", out, "--trials", 1, "--top-k", 0, "--no-final", "--overwrite"]
    code, err = tune(demo_dir, space, *argv)
    assert code == 0, err
    assert "--overwrite: a fresh study 'demo'" in err and "were deleted" in err
    assert [t.number for t in trials(out)] == [0]  # counted from 0 again
    assert not (out / "trials").exists()  # the old trials' predictions went with the study


def test_overwrite_keeps_a_folder_of_your_own_files(demo_dir, space, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("precious\n")
    code, err = tune(demo_dir, space, "--out", out, "--trials", 1, "--overwrite")
    assert code == 2 and "holds files that no run writes (notes.txt)" in err
    assert (out / "notes.txt").read_text() == "precious\n"


def test_without_out_the_same_command_continues_the_same_folder(
    demo_dir, space, tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    folders = lambda: sorted((tmp_path / "runs" / "demo").glob("tune-*"))  # noqa: E731
    assert tune(demo_dir, space, "--trials", 1, "--no-final")[0] == 0
    (first,) = folders()
    code, err = tune(demo_dir, space, "--trials", 2, "--no-final")
    assert code == 0, err
    assert err.startswith(f"no --out: continuing {first.relative_to(tmp_path)}, the newest")
    assert folders() == [first] and len(trials(first, TrialState.COMPLETE)) == 2
    assert tune(demo_dir, space, "--trials", 2, "--top-k", 0)[0] == 0  # ends with the final fit
    assert folders() == [first] and (first / "submission.csv").is_file()
    code, err = tune(demo_dir, space, "--trials", 3, "--top-k", 0)  # more trials: extends it
    assert code == 0, err
    assert folders() == [first] and len(trials(first, TrialState.COMPLETE)) == 3


def test_a_finished_study_run_again_prints_its_summary_and_starts_no_trial(
    demo_dir, space, tmp_path, monkeypatch
):
    """The same command again, after the study ended: no new folder, no trial, no refit; its
    summary, and how to add trials. Without --data-dir: the data folder is the study's own."""
    monkeypatch.chdir(tmp_path)
    first_out: list[str] = []
    assert tune(demo_dir, space, "--trials", 2, "--top-k", 0, out=first_out)[0] == 0
    (folder,) = (tmp_path / "runs" / "demo").glob("tune-*")
    stamp = (folder / "submission.csv").stat().st_mtime_ns
    printed: list[str] = []
    code, err = tune(None, space, "--trials", 2, "--top-k", 0, out=printed)
    assert code == 0, err
    assert list((tmp_path / "runs" / "demo").glob("tune-*")) == [folder]
    assert len(trials(folder)) == 2 and (folder / "submission.csv").stat().st_mtime_ns == stamp
    summary = first_out[0].splitlines()
    assert printed[0].splitlines()[: len(summary)] == summary  # the summary it printed then
    assert re.search(
        r"the study has ended: 2 finished trials \(--trials 2\) and its final fit; nothing was "
        r"run\. Add trials with --trials 12",
        printed[0].replace("\n", " "),
    ), printed[0]
    assert f"no --out: continuing {folder.relative_to(tmp_path)}" in err


def test_ctrl_c_keeps_the_finished_trials_and_the_same_command_resumes(
    demo_dir, space, tmp_path, monkeypatch
):
    out = tmp_path / "tune"
    real_epoch = TuneProgress.epoch

    def epoch(self, number, fold, epoch):  # inside Lightning's fit, like a real Ctrl-C
        if number == 1 and epoch == 1:
            signal.raise_signal(signal.SIGINT)
        real_epoch(self, number, fold, epoch)

    monkeypatch.setattr(TuneProgress, "epoch", epoch)
    argv = ["--out", out, "--trials", 3, "--no-final"]
    code, err = tune(demo_dir, space, *argv)
    assert code == 130
    assert err == (
        f"interrupted (Ctrl-C): 1 finished trial is kept in the study in {out}; run the same "
        "command to resume\n"
    )
    (failed,) = trials(out, TrialState.FAIL)
    assert failed.number == 1 and failed.user_attrs["reason"] == "interrupted: Ctrl-C"
    assert len(trials(out, TrialState.COMPLETE)) == 1
    monkeypatch.setattr(TuneProgress, "epoch", real_epoch)
    assert tune(demo_dir, space, *argv)[0] == 0
    assert len(trials(out, TrialState.COMPLETE)) == 3 and not trials(out, TrialState.RUNNING)


def old_study(out):
    """A tuning run's folder: its SQLite study with one trial, tune.json, saved predictions."""
    out.mkdir()
    study = optuna.create_study(storage=default_url(out), study_name="demo", direction="maximize")
    study.tell(study.ask(), 0.5)
    (out / "tune.json").write_text('{"competition": "demo", "study": "demo"}\n')
    (out / "trials" / "00000").mkdir(parents=True)
    (out / "trials" / "00000" / "oof.npy").write_bytes(b"old")
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


def _fails_to_open(exc):
    def open_storage(url, heartbeat):
        raise exc

    return open_storage


@pytest.mark.parametrize(
    ("storage", "fault", "code", "message"),
    [
        (
            "garbage",
            None,
            2,
            r"error: Cannot open --storage journal:.*garbage\.log as an Optuna "
            r"journal file \(line 1 is not a journal entry: 'garbage'\)",
        ),
        (
            None,
            UserError("Cannot open --storage sqlite:///x: disk I/O error"),
            2,
            r"error: Cannot open --storage sqlite:///x: disk I/O error",
        ),
        (None, Interrupted(signal.SIGINT), 130, r"interrupted \(Ctrl-C\)"),
    ],
    ids=["bad-storage", "default-storage-fails", "ctrl-c"],
)
def test_an_overwrite_whose_storage_does_not_open_keeps_the_old_study_whole(
    demo_dir, space, tmp_path, monkeypatch, storage, fault, code, message
):
    out = tmp_path / "tune"
    before = old_study(out)
    extra = []
    if storage:
        (tmp_path / "garbage.log").write_text("garbage\n")
        extra = ["--storage", f"journal:{tmp_path / 'garbage.log'}"]
    if fault is not None:  # the fresh SQLite file in --out, after the old folder was moved aside
        monkeypatch.setattr(resume, "open_storage", _fails_to_open(fault))
    got, err = tune(demo_dir, space, "--out", out, "--trials", 1, "--overwrite", *extra)
    assert got == code and err.count("\n") == 1 and re.match(message, err), err
    after = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".tune.")] == []
    assert len(trials(out)) == 1


KILL_WHILE_OPENING = """
import os, signal, sys
from pipeline.tune import resume

def open_storage(url, heartbeat):  # kill -9 at the moment the new storage opens
    os.kill(os.getpid(), signal.SIGKILL)

resume.open_storage = open_storage
from pipeline.tune import main
raise SystemExit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("then", ["resume", "overwrite"])
def test_an_overwrite_killed_while_the_new_storage_opens_loses_nothing(
    demo_dir, space, tmp_path, then
):
    """kill -9 between moving the old study aside and the new one being in place: the next
    run (resuming, or the same --overwrite) puts the old study back first."""
    import subprocess
    import sys
    from pathlib import Path

    out = tmp_path / "tune"
    before = old_study(out)
    argv = ["demo", "--data-dir", demo_dir, "--space", space, *QUICK, "--out", out, "--trials"]
    root = Path(__file__).resolve().parents[2]
    killed = subprocess.run(
        [sys.executable, "-c", KILL_WHILE_OPENING, *map(str, [*argv, 1, "--overwrite"])],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    (aside,) = [p for p in tmp_path.iterdir() if p.name.startswith(".tune.old-")]
    if then == "resume":
        code, err = tune(demo_dir, space, "--out", out, "--trials", 1, "--no-final")
        assert code == 0, err
        assert f"moved {aside} back to {out}: the study that process" in err
        kept = {k: v for k, v in before.items() if k != "study.db"}  # resuming opens the db
        assert {k: (out / k).read_bytes() for k in kept if (out / k).is_file()} == kept
        assert len(trials(out)) == 1  # the old study's one trial, nothing new
    else:  # the overwrite, done again, replaces the old study now
        code, err = tune(demo_dir, space, "--out", out, "--trials", 1, "--overwrite")
        assert code == 0, err
        assert "moved" in err and "--overwrite: a fresh study 'demo'" in err
    assert not aside.exists()


def test_a_study_of_another_direction_is_refused_and_leaves_nothing(demo_dir, space, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    optuna.create_study(storage=url, study_name="demo", direction="minimize")
    out = tmp_path / "tune"
    code, err = tune(demo_dir, space, "--out", out, "--storage", url, "--trials", 1)
    assert code == 2 and err.count("\n") == 1, err
    assert "was created to minimize its metric; this competition's metric must maximize" in err
    assert not out.exists()


def test_a_resumed_study_reads_the_data_folder_it_read_before(tmp_path, monkeypatch):
    """competition.yaml in one folder, its files in another: the first run names them with
    --data-dir, the same command without it resumes on the same files."""
    import shutil
    from pathlib import Path

    data = Path(__file__).resolve().parents[1] / "data" / "penguins"
    yaml_dir, files = tmp_path / "comp", tmp_path / "files"
    shutil.copytree(data, files, ignore=shutil.ignore_patterns("competition.yaml", "*.md"))
    yaml_dir.mkdir()
    shutil.copy(data / "competition.yaml", yaml_dir / "competition.yaml")
    monkeypatch.chdir(tmp_path)  # no data/penguins/ here
    quick = [*QUICK, "--space", space_file(tmp_path), "--no-final", "--out", tmp_path / "t"]

    def run(*extra):
        err = io.StringIO()
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
            code = main([str(a) for a in [yaml_dir, *quick, *extra]])
        return code, err.getvalue()

    assert run("--trials", 1, "--data-dir", files)[0] == 0
    code, err = run("--trials", 2)
    assert code == 0, err
    assert f"reading the data from {files.resolve()}/, the folder this study read" in err
    study = optuna.load_study(study_name="penguins", storage=default_url(tmp_path / "t"))
    assert len(study.trials) == 2


def space_file(folder):
    path = folder / "space.yaml"
    path.write_text(SPACE)
    return path
