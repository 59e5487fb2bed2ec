"""pipeline/progress.py: a live bar in a terminal only; in a pipe, a log or a notebook reading a
subprocess (FORCE_COLOR set, as ipykernel sets it), a line per fold and paced lines in between,
never a redraw turned into a line."""

from __future__ import annotations

import json
import os
import pty
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from pipeline import progress
from pipeline.progress import RunProgress, duration, is_live, pulse_gap

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"
REDRAWS = re.compile(r"\r|\x1b\[(2K|\?25l|1A)")  # carriage return, erase line, hide cursor, up
TINY = ["train.epochs=3", "cv.folds=2"]


@pytest.mark.parametrize(
    ("seconds", "text"), [(0, "0 s"), (59.9, "59 s"), (250, "4 min 10 s"), (3725, "1 h 02 min")]
)
def test_duration(seconds, text):
    assert duration(seconds) == text


@pytest.mark.parametrize(
    ("elapsed", "gap"), [(0, 10), (50, 10), (200, 20), (599, 59.9), (3e4, 60)]
)
def test_lines_come_at_most_every_10_s_widening_to_a_minute(elapsed, gap):
    assert pulse_gap(elapsed) == pytest.approx(gap)


def test_in_a_log_epoch_lines_are_paced_and_every_fold_has_its_line(monkeypatch, capsys):
    clock = [1000.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: clock[0])
    with RunProgress(folds=5, epochs=1000, monitor="val/rmse") as run:
        assert not run.live  # pytest's captured stderr is no terminal
        for epoch in range(900):  # epochs of 1 s: 15 minutes
            clock[0] += 1
            run.epoch_done(1, epoch, 0.93, 0.91)
        run.fold_done(1, "fold 2/5: rmse 0.9100 (best epoch 31, 900.0 s)")
        clock[0] += 5
        run.epoch_done(2, 0, 1.5, 1.5)  # 5 s after the fold's line: not yet
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "fold 2/5 epoch 10/1000 val/rmse 0.9300, best 0.9100 (10 s)"
    assert lines[-1] == "fold 2/5: rmse 0.9100 (best epoch 31, 900.0 s)"
    times = [int(re.search(r"epoch (\d+)/", line)[1]) for line in lines[:-1]]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert min(gaps) >= 10 and max(gaps) <= 60  # never more than one in 10 s, nor silent a minute
    assert len(lines) < 40  # 15 minutes of 1-second epochs


def test_quiet_prints_nothing(capsys):
    with RunProgress(folds=2, epochs=3, monitor="val/rmse", enabled=False) as run:
        run.epoch_done(0, 0, 1.0, 1.0)
        run.fold_done(0, "fold 1/2: rmse 1.0")
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("env", "live"),
    [
        ({"FORCE_COLOR": "1"}, False),  # ipykernel's setting: colour, still no terminal
        ({"FORCE_COLOR": "1", "TTY_INTERACTIVE": "0"}, False),
        ({"TTY_INTERACTIVE": "1"}, True),  # rich's switch wins
    ],
)
def test_only_a_terminal_or_the_switch_makes_output_live(monkeypatch, env, live):
    for name in ("FORCE_COLOR", "TTY_INTERACTIVE", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert is_live(Console(stderr=True)) is live
    assert RunProgress(2, 3, "val/rmse").live is live


@pytest.mark.parametrize("widgets", [True, False])
def test_inside_a_kernel_the_bar_is_rich_notebook_display_when_it_can_be(widgets, monkeypatch):
    """rich draws its live display in a notebook through ipywidgets; without them, lines."""
    monkeypatch.delenv("TTY_INTERACTIVE", raising=False)
    real = progress.importlib.util.find_spec
    fake = {"ipywidgets": object() if widgets else None}
    monkeypatch.setattr(
        progress.importlib.util, "find_spec", lambda name: fake.get(name, real(name))
    )
    assert is_live(Console(stderr=True, force_jupyter=True)) is widgets


def notebook_run_helper():
    """The notebook's own `run()`: its cell executed as the notebook executes it."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    source = next("".join(c["source"]) for c in cells if "def run(" in "".join(c["source"]))
    scope = {"os": os, "sys": sys, "subprocess": subprocess, "shlex": shlex}
    exec(compile(source, str(NOTEBOOK), "exec"), scope)
    return scope["run"]


def check_lines(text: str, folds: int) -> list[str]:
    assert not REDRAWS.search(text), "a live-bar redraw reached a pipe"
    lines = text.splitlines()
    for k in range(1, folds + 1):
        assert any(line.startswith(f"fold {k}/{folds}: ") for line in lines), k
    assert any(
        line.startswith("│ mean │") for line in re.sub(r"\x1b\[[0-9;]*m", "", text).split("\n")
    )
    return lines


@pytest.mark.slow
def test_the_notebooks_run_helper_shows_lines_not_redraws(demo_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FORCE_COLOR", "1")  # what ipykernel sets for every subprocess
    monkeypatch.chdir(ROOT)
    run = notebook_run_helper()
    run("pipeline.train", "demo", "--data-dir", demo_dir, "--out", tmp_path / "r", *TINY)
    lines = check_lines(capsys.readouterr().out, folds=2)
    assert len(lines) < 30


@pytest.mark.slow
def test_a_log_file_gets_whole_tables(tmp_path):
    log = tmp_path / "train.log"
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "COLUMNS")}
    with log.open("w") as out:
        subprocess.run(
            [sys.executable, "-m", "pipeline.train", str(ROOT / "tests/data/titanic")]
            + ["--out", str(tmp_path / "r"), *TINY],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
            check=True,
        )
    text = log.read_text()
    lines = check_lines(text, folds=2)
    assert "…" not in text
    header = next(line for line in lines if "fold" in line and "┃" in line)
    assert "logistic regression" in header and "hist gradient boosting" in header


@pytest.mark.slow
def test_a_terminal_gets_the_live_bar(demo_dir, tmp_path):
    """The same run under a pseudo-terminal draws the bar (redraws), then the table."""
    leader, follower = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "TTY_INTERACTIVE")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.train", "demo", "--data-dir", str(demo_dir)]
        + ["--out", str(tmp_path / "r"), *TINY],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env={**env, "TERM": "xterm-256color", "COLUMNS": "120"},
        cwd=ROOT,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    text = b"".join(chunks).decode()
    assert REDRAWS.search(text)
    assert "fold 1/2: " not in text  # the bar replaces the per-fold lines
    assert "out-of-fold accuracy" in text
