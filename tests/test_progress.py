"""pipeline/progress.py in a log (stderr not a terminal): a line per fold and, in between, at least
one a minute."""

import pytest

from pipeline import progress
from pipeline.progress import RunProgress, duration


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0 s"), (59.9, "59 s"), (250, "4 min 10 s"), (3725, "1 h 02 min")]
)
def test_duration(seconds, text):
    assert duration(seconds) == text


def test_in_a_log_a_long_fold_prints_a_line_every_minute(monkeypatch, capsys):
    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    with RunProgress(folds=5, epochs=100, monitor="val/rmse") as run:
        assert not run.live  # pytest's captured stderr is no terminal
        for epoch in range(40):  # 40 epochs of 10 s: a line at 60 s, 120 s, ...
            clock[0] += 10
            run.epoch_done(1, epoch, 0.93, 0.91)
        run.fold_done(1, "fold 2/5: rmse 0.9100 (best epoch 31, 400.0 s)")
        clock[0] += 30
        run.epoch_done(2, 0, 1.5, 1.5)  # 30 s after the fold's line: not yet
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 400 // 60 + 1
    assert lines[0] == "fold 2/5 epoch 6/100 val/rmse 0.9300, best 0.9100 (1 min 0 s)"
    assert lines[3] == "fold 2/5 epoch 24/100 val/rmse 0.9300, best 0.9100 (4 min 0 s)"
    assert lines[-1] == "fold 2/5: rmse 0.9100 (best epoch 31, 400.0 s)"


def test_quiet_prints_nothing(capsys):
    with RunProgress(folds=2, epochs=3, monitor="val/rmse", enabled=False) as run:
        run.epoch_done(0, 0, 1.0, 1.0)
        run.fold_done(0, "fold 1/2: rmse 1.0")
    assert capsys.readouterr().err == ""
