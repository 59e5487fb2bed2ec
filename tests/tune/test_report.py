"""pipeline/tune/report.py in a pipe or a notebook: paced lines that say how many trials finished
and the best so far, a diverged or failed trial at once, and the last state when tuning stops."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState, create_trial

from pipeline import progress
from pipeline.tune.report import TuneProgress

DIST = {"optim.lr": FloatDistribution(1e-4, 1e-1, log=True)}


def _trial(study, state, value=None, reason=""):
    trial = create_trial(
        state=state,
        value=value,
        params={"optim.lr": 1e-3},
        distributions=DIST,
        user_attrs={"reason": reason, "seconds": 1.0},
    )
    study.add_trial(trial)
    return study.trials[-1]


def test_trial_lines_are_paced_but_trouble_is_said_at_once(monkeypatch, capsys):
    clock = [0.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    study = optuna.create_study(direction="minimize")
    bar = TuneProgress(total=30, metric="rmse").start(0)
    assert not bar.live
    for n in range(29):  # a trial a second: 29 s
        clock[0] += 1.0
        if n == 14:
            trial = _trial(study, TrialState.PRUNED, reason="diverged: fold 1: the loss ...")
        elif n % 3:
            trial = _trial(study, TrialState.PRUNED, reason="pruned at fold 1, epoch 3")
        else:
            trial = _trial(study, TrialState.COMPLETE, value=1.0 - n / 100)
        bar.trial_done(trial, study, n + 1)
    bar.stop()
    lines = capsys.readouterr().err.splitlines()
    assert lines == [
        "10/30 trials finished · best rmse 0.9100 (trial 9) · last: trial 9 complete: "
        "rmse 0.9100 · 1.0 s (10 s)",
        "15/30 trials finished · best rmse 0.8800 (trial 12) · last: trial 14 pruned: "
        "diverged: fold 1: the loss ... · 1.0 s (15 s)",
        "25/30 trials finished · best rmse 0.7600 (trial 24) · last: trial 24 complete: "
        "rmse 0.7600 · 1.0 s (25 s)",
        "29/30 trials finished · best rmse 0.7300 (trial 27) · last: trial 28 pruned: "
        "at fold 1, epoch 3 · 1.0 s (29 s)",  # said when tuning stops
    ]
