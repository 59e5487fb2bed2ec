"""Blend members read while their folders change: a run folder replaced by another run (as
pipeline/run/folder.py moves a finished run in) and a tune folder whose trials are saved and
removed (pipeline/tune/objective.py) give one run's files or a one-line refusal that says the
folder is being written, never the out-of-fold predictions of one run with the test
predictions of another, and never a wrong reason."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import optuna
import pandas as pd
import pytest

from pipeline.ensemble.members import load_members, run_info
from pipeline.errors import DataError
from pipeline.io import write_csv, write_json, write_npy
from pipeline.run.folder import run_folder
from pipeline.tune.objective import keep_top_k, save_trial

N, N_TEST, SECONDS = 40, 10, 1.5


@pytest.fixture(scope="module")
def demo_like():
    from pipeline.competition.catalog import load_competition
    from pipeline.run.inputs import resolve_config

    competition = load_competition("demo")
    return competition, resolve_config(competition, None, [])


def write_run(folder: Path, k: int, info: dict) -> None:
    """A run whose every prediction is k: a mix of two runs shows as two values."""
    write_npy(folder / "oof_pred.npy", np.full(N, float(k)))
    write_npy(folder / "test_pred.npy", np.full(N_TEST, float(k)))
    frame = pd.DataFrame({"id": np.arange(N), "fold": np.arange(N) % 2, "target": 0.0})
    write_csv(folder / "oof.csv", frame)
    write_json(folder / "metrics.json", {**info, "k": k})


def read_while(write, read, seconds: float = SECONDS) -> tuple[int, int, list[str]]:
    """(reads, refusals, problems) of `read` called while `write(i)` runs in a thread."""
    stop, errors = threading.Event(), []

    def writer() -> None:
        i = 0
        try:
            while not stop.is_set():
                i += 1
                write(i)
        except BaseException as exc:  # shown by the test, not lost in the thread
            errors.append(repr(exc))

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    reads = refused = 0
    problems: list[str] = []
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            reads += 1
            try:
                problem = read()
            except DataError as exc:
                if "is being written or replaced right now" not in str(exc):
                    problems.append(f"wrong reason: {exc}")
                refused += 1
                continue
            if problem:
                problems.append(problem)
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    return reads, refused, problems


def test_a_run_replaced_while_it_is_read_is_read_as_one_run(demo_like, tmp_path):
    competition, cfg = demo_like
    info = run_info(competition, cfg, N, N_TEST)
    out = tmp_path / "run"
    with run_folder(out, overwrite=False, say=lambda _: None) as work:
        write_run(work, 0, info)

    def write(i: int) -> None:
        with run_folder(out, overwrite=True, say=lambda _: None) as work:
            write_run(work, i, info)

    def read() -> str:
        (member,) = load_members([out])
        values = {member.oof[0], member.test[0], float(member.info["k"])}
        return "" if len(values) == 1 else f"files of runs {sorted(values)} read as one"

    reads, refused, problems = read_while(write, read)
    print(f"{reads} reads, {refused} refused as being written")  # the counts, with -s
    assert not problems, f"{len(problems)} of {reads} reads: {problems[:3]}"
    assert reads > 50 and refused < reads / 2, (reads, refused)


def test_a_tune_folder_read_while_trials_are_saved_and_removed(demo_like, tmp_path):
    """A worker saves trial after trial and keeps the best 3 (each trial's value is its
    number, so the newest are the best): the blend reads 3 whole trials or says the folder is
    being written; "saved by an older pipeline.tune" would be the wrong reason."""
    competition, cfg = demo_like
    out = tmp_path / "tune"
    write_json(out / "tune.json", {"competition": competition.name, "greater_is_better": True})
    study = optuna.create_study(direction="maximize")
    ids = np.arange(N)
    inputs = SimpleNamespace(
        competition=competition,
        cfg=cfg,
        train=SimpleNamespace(y=np.zeros(N), ids=ids),
        test=SimpleNamespace(X=np.zeros((N_TEST, 1)), ids=np.arange(N_TEST)),
    )
    setup = SimpleNamespace(out_dir=out)

    def write(_: int) -> None:
        number = len(study.trials)
        k = float(number)
        cv = SimpleNamespace(  # what save_trial takes from a fitted CrossValidator
            predict=lambda X: (np.full(len(X), k), None),
            oof_=np.full(N, k),
            fold_of_row_=ids % 2,
            fold_scores_=[k, k],
        )
        save_trial(setup, inputs, cv, number, k, {})
        study.add_trial(optuna.trial.create_trial(value=k))
        keep_top_k(study, out, 3)

    for i in range(3):
        write(i)

    def read() -> str:
        members = load_members([out])
        for m in members:
            values = {m.oof[0], m.test[0], float(m.value)}
            if len(values) != 1:
                return f"{m.name} mixes the files of trials {sorted(values)}"
        # 4 whole trials between a save and the pruning of the worst one
        return "" if len(members) in (3, 4) else f"{len(members)} trials read, 3 kept"

    reads, refused, problems = read_while(write, read)
    print(f"{reads} reads, {refused} refused as being written")  # the counts, with -s
    assert not problems, f"{len(problems)} of {reads} reads: {problems[:3]}"
    assert reads > 20 and refused < reads / 2, (reads, refused)
