"""Run folders (pipeline/run/folder.py): a run appears at --out whole or not at all; --overwrite
replaces an earlier run only once the new one has finished; an unfinished run is replaced."""

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.errors import UserError
from pipeline.interrupts import Interrupted
from pipeline.progress import RunProgress
from pipeline.run import folder as rundir
from pipeline.run.folder import (
    MARKER,
    check_run_dir,
    is_run_name,
    run_folder,
    run_state,
)
from pipeline.train import main
from tests.conftest import ROOT

QUICK = ["--quiet", "train.epochs=3", "train.patience=0", "cv.baseline=false", "model.hidden=[32]"]
PLAIN_5 = ["train.engine=plain", "cv.folds=5", "predict.mc_samples=2"]  # logs/fold0..4, spreads


def train(demo_dir, out, *extra):
    argv = ["demo", "--data-dir", demo_dir, "--out", out, *QUICK, *extra]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = main([str(a) for a in argv])
    return code, stdout.getvalue(), stderr.getvalue()


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder`: relative path -> sha256."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files
    }


def leftovers(out: Path) -> list[str]:
    """Temporary siblings of `out` (.<name>.partial-<pid>, .<name>.old-<pid>)."""
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}."))


def make(folder: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        if name.endswith("/"):
            (folder / name).mkdir()
        else:
            (folder / name).write_text("x\n")
    return folder


def dead_pid() -> int:
    """The id of a process that has ended."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout)


# -- the rules, without training ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("names", "state"),
    [
        ((), "new"),
        ((MARKER, "submission.csv", "logs/"), "complete"),
        (("metrics.json", "submission.csv"), "complete"),  # finished before the marker existed
        ((MARKER, "submission_blend.csv", "oof_pred.npy", "test_pred.npy"), "complete"),
        ((MARKER, "oof.csv", "blend.png"), "complete"),  # a pipeline.blend run
        (("config.yaml", "provenance.json", "logs/"), "unfinished"),  # what Ctrl-C used to leave
        ((".submission.csv.abc.tmp",), "new"),  # an atomic write that never finished
        (("config.yaml", "notes.txt"), "foreign"),
    ],
)
def test_what_a_folder_holds_decides_its_state(names, state, tmp_path):
    assert run_state(make(tmp_path / "run", *names)) == state


@pytest.mark.parametrize(
    ("names", "overwrite", "message"),
    [
        ((MARKER, "oof.csv"), False, r"already holds a finished run; .*add --overwrite"),
        (("metrics.json",), False, r"already holds a finished run"),
        (("notes.txt", "logs/"), True, r"holds files that no run writes \(notes.txt\)"),
        (("a", "b", "c", "d"), False, r"no run writes \(a, b, c, \.\.\.\); choose a new folder"),
    ],
)
def test_folders_that_may_not_be_replaced(names, overwrite, message, tmp_path):
    folder = make(tmp_path / "run", *names)
    before = snapshot(folder)
    with pytest.raises(UserError, match=message):
        check_run_dir(folder, overwrite)
    assert snapshot(folder) == before


def test_a_file_is_not_a_run_folder(tmp_path):
    (tmp_path / "run").write_text("x")
    with pytest.raises(UserError, match="exists and is not a folder"):
        check_run_dir(tmp_path / "run", overwrite=True)


def test_a_run_in_progress_at_the_same_out_is_refused(tmp_path):
    parent = os.getppid()  # a live process that is not this one
    make(tmp_path / f".run.partial-{parent}", "logs/")
    refused = pytest.raises(UserError, match=rf"process {parent} is writing a run there")
    with refused, run_folder(tmp_path / "run", overwrite=False):
        pass
    assert not (tmp_path / "run").exists()


def test_what_a_killed_run_left_is_removed_with_one_line(tmp_path):
    out = tmp_path / "run"
    stale = make(tmp_path / f".run.partial-{dead_pid()}", "logs/")
    said = []
    with run_folder(out, overwrite=False, say=said.append) as work:
        (work / "submission.csv").write_text("new\n")
    assert len(said) == 1 and said[0].startswith(f"removed {stale}: what an unfinished run")
    assert sorted(snapshot(out)) == [MARKER, "submission.csv"] and leftovers(out) == []
    assert json.loads((out / MARKER).read_text())["complete"] is True


def test_a_failing_block_leaves_the_old_run_and_no_temporary_folder(tmp_path):
    out = make(tmp_path / "run", MARKER, "submission.csv")
    before = snapshot(out)
    with pytest.raises(RuntimeError, match="crash"), run_folder(out, overwrite=True) as work:
        (work / "submission.csv").write_text("new\n")
        raise RuntimeError("crash")
    assert snapshot(out) == before and leftovers(out) == []


@pytest.mark.parametrize(
    ("names", "kept"), [((), "was not created"), ((MARKER, "oof.csv"), "was not changed")]
)
def test_an_interrupt_says_what_was_kept(names, kept, tmp_path):
    out = make(tmp_path / "run", *names) if names else tmp_path / "run"
    with pytest.raises(Interrupted) as caught, run_folder(out, overwrite=True):
        raise Interrupted(signal.SIGTERM)
    assert caught.value.kept == f"nothing written; {out} {kept}"
    assert caught.value.exit_code == 143 and leftovers(out) == []


# -- moving a finished run into place ------------------------------------------------------------
CRASH_BETWEEN_RENAMES = """
import os, sys
from pathlib import Path
from pipeline.run import folder as rundir
rundir._exchange = lambda a, b: False  # no atomic swap: the two renames
real = os.rename
def rename(src, dst):
    if ".partial-" in str(src):  # the second rename: the new run into place
        os._exit(9)  # power loss
    real(src, dst)
os.rename = rename
with rundir.run_folder(Path(sys.argv[1]), overwrite=True) as work:
    (work / "submission.csv").write_text("new\\n")
"""


@pytest.mark.parametrize("swap", [True, False], ids=["exchange", "two-renames"])
def test_overwrite_moves_the_new_run_in_and_deletes_the_old_one(swap, tmp_path, monkeypatch):
    if not swap:
        monkeypatch.setattr(rundir, "_exchange", lambda a, b: False)
    out = make(tmp_path / "run", MARKER, "submission.csv", "oof.csv")
    with run_folder(out, overwrite=True) as work:
        (work / "submission.csv").write_text("new\n")
    assert sorted(snapshot(out)) == [MARKER, "submission.csv"] and leftovers(out) == []
    assert (out / "submission.csv").read_text() == "new\n"


def test_a_crash_between_the_two_renames_is_repaired_by_the_next_run(tmp_path):
    out = make(tmp_path / "run", MARKER, "submission.csv")
    child = subprocess.run(
        [sys.executable, "-c", CRASH_BETWEEN_RENAMES, str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.returncode == 9
    # the moment between the renames: no run at --out, the old one and the finished new one beside
    left = [n.split("-")[0] for n in leftovers(out)]
    assert not out.exists() and left == [".run.old", ".run.partial"]
    said = []
    # the same command without --overwrite: the repaired run at --out is a finished one
    refused = pytest.raises(UserError, match="already holds a finished run")
    with refused, run_folder(out, overwrite=False, say=said.append):
        pass
    assert (out / "submission.csv").read_text() == "new\n" and (out / MARKER).is_file()
    assert leftovers(out) == [] and len(said) == 2
    assert said[0].startswith("moved ") and "the finished run of process" in said[0]
    assert said[1].startswith("removed ") and ".run.old-" in said[1]


def test_an_old_run_moved_aside_by_a_run_that_never_finished_is_moved_back(tmp_path):
    out, pid = tmp_path / "run", dead_pid()
    make(tmp_path / f".run.old-{pid}", MARKER, "submission.csv")
    make(tmp_path / f".run.partial-{pid}", "logs/")  # no marker: that run had not finished
    said = []
    rundir.repair_leftovers(out, say=said.append)
    assert sorted(snapshot(out)) == [MARKER, "submission.csv"] and leftovers(out) == []
    assert said[-1].startswith(f"moved {tmp_path / f'.run.old-{pid}'} back to {out}")


def test_a_failing_second_rename_puts_the_old_run_back(tmp_path, monkeypatch):
    monkeypatch.setattr(rundir, "_exchange", lambda a, b: False)
    out = make(tmp_path / "run", MARKER, "submission.csv")
    before, real = snapshot(out), os.rename

    def rename(src, dst):
        if ".partial-" in str(src):
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError), run_folder(out, overwrite=True) as work:
        (work / "submission.csv").write_text("new\n")
    assert snapshot(out) == before and leftovers(out) == []


# -- python -m pipeline.train, in-process -----------------------------------------------------
@pytest.fixture(scope="module")
def five_fold(demo_dir, tmp_path_factory):
    """A finished 5-fold run of the plain engine, with MC-dropout spreads."""
    out = tmp_path_factory.mktemp("five") / "run"
    code, _, err = train(demo_dir, out, *PLAIN_5)
    assert code == 0, err
    return out


@pytest.fixture
def old_run(five_fold, tmp_path):
    """A copy of the 5-fold run that a test may overwrite."""
    return Path(shutil.copytree(five_fold, tmp_path / "run"))


def test_a_run_folder_holds_only_names_the_rules_know(five_fold):
    names = {p.name for p in five_fold.iterdir()}
    assert all(is_run_name(n) for n in names)
    assert {MARKER, "test_mc_spread.csv", "learning_curves.png", "submission_network.csv"} <= names
    config = (five_fold / "config.yaml").read_text()
    assert f"--config {five_fold / 'config.yaml'}" in config and ".partial" not in config


def test_overwrite_by_a_3_fold_run_leaves_only_the_new_runs_files(old_run, demo_dir, tmp_path):
    files = set(snapshot(old_run))
    assert {"checkpoints/fold4.ckpt", "logs/fold4/metrics.csv", "test_mc_spread.csv"} <= files
    code, _, err = train(demo_dir, old_run, "train.engine=plain", "cv.folds=3", "--overwrite")
    assert code == 0, err
    fresh = tmp_path / "fresh"
    assert train(demo_dir, fresh, "train.engine=plain", "cv.folds=3")[0] == 0
    assert set(snapshot(old_run)) == set(snapshot(fresh))  # nothing of the 5-fold run is left
    assert not any("fold3" in f or "fold4" in f for f in snapshot(old_run))
    assert json.loads((old_run / "metrics.json").read_text())["cv"]["folds"] == 3
    assert leftovers(old_run) == []


@pytest.mark.parametrize("how", ["error", "interrupt"])
def test_a_failing_or_interrupted_overwrite_keeps_the_old_run_whole(
    how, old_run, demo_dir, monkeypatch
):
    before = snapshot(old_run)

    def second_epoch(self, fold, epoch, *_):  # called inside Lightning's fit, like a real Ctrl-C
        if epoch == 1:
            if how == "error":
                raise RuntimeError("disk on fire")
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(RunProgress, "epoch_done", second_epoch)
    monkeypatch.setattr(RunProgress, "stacked_epoch_done", second_epoch)
    argv = ["cv.folds=3", "--overwrite"]
    if how == "error":
        with pytest.raises(RuntimeError, match="disk on fire"):
            train(demo_dir, old_run, *argv)
    else:
        code, _, err = train(demo_dir, old_run, *argv)
        assert code == 130
        assert err == f"interrupted (Ctrl-C): nothing written; {old_run} was not changed\n"
    assert snapshot(old_run) == before and leftovers(old_run) == []


def test_an_unfinished_run_is_replaced_without_overwrite_and_says_so(demo_dir, tmp_path):
    out = make(tmp_path / "run", "config.yaml", "provenance.json", "logs/")
    code, _, err = train(demo_dir, out, "cv.folds=2")
    assert code == 0, err
    assert err == f"--out {out} holds an unfinished run (no {MARKER}); this run replaces it.\n"
    assert {MARKER, "submission.csv", "metrics.json"} <= {p.name for p in out.iterdir()}


# -- python -m pipeline.train in a process of its own, stopped by a signal ------------------------
def start_training(demo_dir, out):
    argv = [
        sys.executable,
        "-m",
        "pipeline.train",
        "demo",
        "--data-dir",
        str(demo_dir),
        "--out",
        str(out),
        "--quiet",
        "train.epochs=60",
        "train.patience=0",
        "cv.folds=2",
        "cv.baseline=false",
        "model.hidden=[32]",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # 2 threads on 2 busy cores: 20x slower
    return subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def wait_for_training(proc, out: Path, timeout: float = 60.0) -> None:
    """Until Lightning has logged into the temporary folder (the run is inside Trainer.fit)."""
    logs = out.parent / f".{out.name}.partial-{proc.pid}" / "logs"
    deadline = time.monotonic() + timeout
    while not any(logs.rglob("*")):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "training did not start"
        time.sleep(0.05)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code"),
    # SIGKILL's leftover is tested in-process (test_an_unfinished_run_is_replaced_...); the
    # subprocess case costs 20 s of the suite
    [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
    ids=["SIGINT", "SIGTERM"],
)
def test_a_signal_mid_training_then_the_same_command_succeeds(signum, code, demo_dir, tmp_path):
    out = tmp_path / "run"
    proc = start_training(demo_dir, out)
    wait_for_training(proc, out)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    assert not out.exists()
    if signum == signal.SIGKILL:
        assert err == "" and leftovers(out) == [f".run.partial-{proc.pid}"]
    else:
        how = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
        assert err == f"interrupted ({how}): nothing written; {out} was not created\n"
        assert leftovers(out) == []
    again = start_training(demo_dir, out)  # the same command, no --overwrite
    _, err = again.communicate(timeout=120)
    assert again.returncode == 0, err
    assert (out / MARKER).is_file() and leftovers(out) == []
    if signum == signal.SIGKILL:  # it said what it removed
        assert err.startswith(f"removed {out.parent / f'.run.partial-{proc.pid}'}: ")
