"""One worker's part of a study: open or resume it with this worker's sampler and pruner, run
trials until the study holds its total or the time is up, and say whether this worker writes
the end (best.yaml, the final fit, the ensemble)."""

from __future__ import annotations

import random
import sys
import time

import optuna
from optuna.storages import BaseStorage
from optuna.trial import TrialState

from pipeline.competition.base import Competition
from pipeline.config import Config
from pipeline.errors import ConfigError, UserError
from pipeline.faults import os_fault
from pipeline.interrupts import Interrupted
from pipeline.tune.objective import SURPLUS, Objective, TuneSetup, keep_top_k
from pipeline.tune.pruners import Pruning, make_pruner
from pipeline.tune.report import TuneProgress
from pipeline.tune.storage import (
    FINISHED,
    WORKER_ID,
    counts,
    create_or_load,
    fail_stale_trials,
    n_finished,
)

MAX_FAILURES_IN_A_ROW = 3  # unexpected errors this often in a row: a bug, not bad luck
POLL_SECONDS = 1.0  # how often a worker with nothing to start looks at the study again


def open_study(
    storage: BaseStorage,
    name: str,
    competition: Competition,
    cfg: Config,
    stride: int,
    pruning: Pruning,
    seed: int,
) -> tuple[optuna.Study, int]:
    """(study, stride): the study created or resumed, with this worker's sampler and pruner.
    A resumed study keeps the stride it was created with; the pruner is this worker's
    (--pruner and its settings), built on that stride."""
    metric = competition.metric
    study, created = create_or_load(
        storage,
        name,
        metric.direction,
        _sampler(seed),
        make_pruner(pruning, stride, cfg.cv.folds),
    )
    if "stride" not in study.user_attrs:  # the first worker (the study may come from a script)
        study.set_user_attr("competition", competition.name)
        study.set_user_attr("metric", metric.name)
        study.set_user_attr("stride", stride)
    elif not created:
        _check_resumed(study, competition, stride)
        stride = int(study.user_attrs["stride"])
        # a later worker samples its own points; the first one stays reproducible
        study.sampler = _sampler(seed + 1 + random.SystemRandom().randrange(2**30))
        study.pruner = make_pruner(pruning, stride, cfg.cv.folds)
    return study, stride


def _sampler(seed: int) -> optuna.samplers.BaseSampler:
    # constant_liar: running trials count as bad guesses, so parallel workers spread out
    return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=True)


def _check_resumed(study: optuna.Study, competition: Competition, stride: int) -> None:
    theirs = study.user_attrs.get("competition")
    if theirs not in (None, competition.name):
        raise UserError(
            f"Study {study.study_name!r} in this storage tunes {theirs}, not "
            f"{competition.name}; use another --study name or --out folder."
        )
    if stride > int(study.user_attrs.get("stride", stride)):
        raise ConfigError(
            f"train.epochs up to {stride} is more than the {study.user_attrs['stride']} epochs "
            f"per fold study {study.study_name!r} numbers its steps for; start a new study "
            "(--study NAME)."
        )


def run_trials(
    study: optuna.Study,
    setup: TuneSetup,
    timeout: float | None,
    native: bool,
    grace: float,
    progress: TuneProgress,
) -> tuple[str, int]:
    """Run trials until the study holds setup.n_trials finished ones or `timeout` passes.
    Returns why it stopped ('done' or 'timeout') and how many trials this worker ran."""
    objective = Objective(setup)
    deadline = None if timeout is None else time.monotonic() + timeout
    ran = failures = 0
    last: list[optuna.trial.FrozenTrial] = []

    def remember(_study, trial) -> None:
        last[:] = [trial]

    while True:
        fail_stale_trials(study, native, grace)
        c = counts(study)
        finished = c["complete"] + c["pruned"]
        if finished >= setup.n_trials:
            return "done", ran
        if deadline is not None and time.monotonic() >= deadline:
            return "timeout", ran
        if finished + c["running"] >= setup.n_trials:
            progress.waiting(c["running"])  # the last slots are taken: they finish or go stale
            time.sleep(POLL_SECONDS)
            continue
        try:
            study.optimize(objective, n_trials=1, catch=(Exception,), callbacks=[remember])
        except Interrupted:
            objective.abandon()
            raise
        trial = last[0]
        if trial.user_attrs.get("reason", "").startswith(SURPLUS):
            continue
        ran += 1
        if trial.state == TrialState.COMPLETE:
            keep_top_k(study, setup.out_dir, setup.top_k)
        progress.trial_done(trial, study, n_finished(study))
        if trial.state == TrialState.FAIL and objective.last_error is not None:
            if isinstance(objective.last_error, OSError) and os_fault(objective.last_error):
                raise objective.last_error  # a full disk: the machine's fault, not the trial's
            failures += 1
            if failures >= MAX_FAILURES_IN_A_ROW:
                raise objective.last_error
        else:
            failures = 0


def writes_final(study: optuna.Study, stopped: str, ran: int) -> bool:
    """One worker writes the end of a study: the last one to stop, i.e. none is running and,
    when the study is complete, this worker finished its last trial (or ran none)."""
    running = counts(study)["running"]
    if running:
        print(
            f"{running} trial(s) still run in other workers; the last worker to finish writes "
            "best.yaml and the submission.",
            file=sys.stderr,
        )
        return False
    if stopped == "done" and ran and not _finished_last(study):
        print(
            "the study is complete; the worker that finished its last trial writes best.yaml "
            "and the submission.",
            file=sys.stderr,
        )
        return False
    return True


def _finished_last(study: optuna.Study) -> bool:
    """Whether this worker finished the study's most recent finished trial."""
    trials = [t for t in study.get_trials(deepcopy=False, states=FINISHED) if t.datetime_complete]
    if not trials:
        return True
    last = max(trials, key=lambda t: (t.datetime_complete, t.number))
    return last.user_attrs.get("worker") == WORKER_ID
