"""pipeline/run/report.py: the summary fits a pipe without cutting a column, and the learning
curves number folds from 1, end where each fold stopped and mark its best epoch."""

from __future__ import annotations

import io
import json

import matplotlib
import pandas as pd
import pytest
from rich.console import Console

from pipeline.progress import LOG_WIDTH, make_console
from pipeline.run.report import learning_curves, print_summary

matplotlib.use("Agg")


def _metrics(refs: list[str]) -> dict:
    folds = [0.8312, 0.8802, 0.8542]
    ref = {"fold_scores": [0.8424, 0.8744, 0.8749], "mean": 0.8507, "std": 0.0266}
    references = [{"name": name, **ref, "oof_score": 0.8493} for name in refs]
    return {
        "competition": "titanic",
        "metric": "auc",
        "greater_is_better": True,
        "cv": {"folds": 3, "strategy": "kfold", "gap": 0},
        "fold_scores": folds,
        "mean": 0.8552,
        "std": 0.0200,
        "oof_score": 0.8398,
        "best_epochs": [6, 5, 6],
        "epochs_run": [26, 25, 26],
        "seconds": {"folds": [0.1, 0.1, 0.1], "total": 1.6},
        "baseline": references[0],
        "references": references,
    }


def test_in_a_pipe_no_column_is_cut_and_no_mean_wraps(tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    buffer = io.StringIO()
    console = make_console()  # pytest's stdout is no terminal
    assert console.width == LOG_WIDTH
    console.file = buffer
    print_summary(_metrics(["logistic_regression", "hist_gradient_boosting"]), tmp_path, console)
    text = buffer.getvalue()
    assert "…" not in text
    assert "logistic regression" in text and "hist gradient boosting" in text
    mean_row = next(line for line in text.splitlines() if "mean" in line)
    assert mean_row.count("±") == 3  # the network and both references, each on one line


def test_in_an_80_column_terminal_headers_wrap_and_scores_stay_whole(tmp_path):
    buffer = io.StringIO()
    console = Console(file=buffer, width=80, force_terminal=False)
    print_summary(_metrics(["logistic_regression", "hist_gradient_boosting"]), tmp_path, console)
    lines = buffer.getvalue().splitlines()
    table = lines[: next(i for i, line in enumerate(lines) if line.startswith("└")) + 1]
    assert all(len(line) <= 80 for line in table) and "…" not in "\n".join(table)
    header = "\n".join(table[:6])
    assert "logistic" in header and "regression" in header and "boosting" in header
    mean_row = next(line for line in table if "mean" in line)
    assert mean_row.count("±") == 3


def _write_stacked_log(run, epochs: int, folds: int) -> None:
    rows = []
    for e in range(epochs):
        row = {"epoch": e, "step": e, "train/loss": 1.0 / (e + 1), "val/loss": 1.2 / (e + 1)}
        row.update({f"val/rmse/fold{k}": 1.0 + 0.1 * k - 0.01 * e for k in range(folds)})
        rows.append(row)
    (run / "logs" / "folds").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(run / "logs" / "folds" / "metrics.csv", index=False)


def test_fast_engine_curves_end_at_each_folds_stop_with_a_best_epoch_marker(tmp_path):
    _write_stacked_log(tmp_path, epochs=12, folds=2)
    best, ran = [3, 7], [6, 12]
    (tmp_path / "metrics.json").write_text(json.dumps({"best_epochs": best, "epochs_run": ran}))
    fig = learning_curves(tmp_path, "val/rmse")
    _, ax_metric = fig.axes
    curves = {ln.get_label(): ln for ln in ax_metric.get_lines() if ln.get_linestyle() == "-"}
    assert sorted(curves) == ["fold 1", "fold 2"]
    for k, label in enumerate(["fold 1", "fold 2"]):
        x = list(curves[label].get_xdata())
        assert x[0] == 1 and x[-1] == ran[k]  # 1-based epochs, cut where the fold stopped
    markers = [ln for ln in ax_metric.get_lines() if ln.get_marker() == "o"]
    assert [list(m.get_xdata()) for m in markers] == [[3], [7]]
    expected = [1.0 - 0.01 * 2, 1.1 - 0.01 * 6]  # the curve's value at the best epoch
    assert [m.get_ydata()[0] for m in markers] == pytest.approx(expected)


def test_plain_engine_logs_are_labelled_from_fold_1(tmp_path):
    for k in range(3):
        folder = tmp_path / "logs" / f"fold{k}"
        folder.mkdir(parents=True)
        frame = pd.DataFrame({"epoch": [0, 1, 2], "val/rmse": [1.0, 0.9, 0.95]})
        frame.to_csv(folder / "metrics.csv", index=False)
    best = {"best_epochs": [2, 2, 2], "epochs_run": [3, 3, 3]}
    (tmp_path / "metrics.json").write_text(json.dumps(best))
    fig = learning_curves(tmp_path, "val/rmse")
    labels = [t.get_text() for t in fig.axes[1].get_legend().get_texts()]
    assert labels == ["fold 1", "fold 2", "fold 3"]
    assert len([ln for ln in fig.axes[1].get_lines() if ln.get_marker() == "o"]) == 3
