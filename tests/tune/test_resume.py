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


def tune(demo_dir, space, *extra):
    argv = ["demo", "--data-dir", demo_dir, "--space", space, *QUICK, *extra]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(a) for a in argv])
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
    assert tune(demo_dir, space, "--trials", 2, "--no-final")[0] == 0  # it had ended: a new one
    assert len(folders()) == 2 and len(trials(folders()[-1])) == 2


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
    study = optuna.create_study(storage=default_url(out), study_name="demo")
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
