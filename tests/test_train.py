import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from pipeline.train import main
from tests.conftest import ROOT


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], r"Unknown competition 'nope'; available: .*covid.*demo"),
        (["../x"], r"Unknown competition '\.\./x'; available: "),  # no relative import
        ([".x"], r"Unknown competition '\.x'; available: "),
        (["covid", "model.dropuot=0.3"], r"Unknown config key 'model.dropuot'"),
        (["covid", "cv.folds=1"], r"cv.folds must be an int >= 2; got 1"),
        (["covid", "cv.folds=two"], r"cv.folds must be an int"),
        (
            ["covid", "model.hidden=[64, 32]", "model.norm=group", "model.norm_groups=5"],
            r"groups that divide the layer width",
        ),
        (
            ["covid", "--config", "/nonexistent/best.yaml"],
            r"Config file /nonexistent/best.yaml does not exist",
        ),
        (["covid", "--bogus"], r"unrecognized arguments: --bogus"),
        (["covid", "post.viterbi=true"], r"post.smooth and post.viterbi use the order of rows"),
        (["covid", "model.name=conv"], r"rows are not made of frames; use model.name=mlp"),
    ],
)
def test_user_errors_are_one_line_exit_2_and_write_nothing(
    args, message, covid_dir, tmp_path, capsys
):
    out = tmp_path / "run"
    code, _, err = run_cli([*args, "--data-dir", covid_dir, "--out", out], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert "Traceback" not in err
    import re

    assert re.search(message, err), err
    assert not out.exists()


@pytest.mark.parametrize("door", ["train", "tune", "blend"])
def test_no_arguments_names_only_what_is_required(door, capsys):
    """key=value overrides may be left out: the line does not ask for them."""
    import importlib

    main_of = importlib.import_module(f"pipeline.{door}").main
    assert main_of([]) == 2
    err = capsys.readouterr().err
    required = "competition, RUN_DIR" if door == "blend" else "competition"
    assert err == (
        f"error: the following arguments are required: {required} (see python -m "
        f"pipeline.{door} --help)\n"
    )


def test_missing_data_names_the_download_command(tmp_path, capsys):
    code, _, err = run_cli(["covid", "--data-dir", tmp_path, "--out", tmp_path / "run"], capsys)
    assert code == 2
    assert "scripts/download.sh covid" in err and "--data-dir" in err
    assert not (tmp_path / "run").exists()


def test_damaged_data_is_refused_before_anything_is_written(covid_copy, tmp_path, capsys):
    frame = pd.read_csv(covid_copy / "covid.train.csv")
    frame.drop(columns="shop.2").to_csv(covid_copy / "covid.train.csv", index=False)
    code, _, err = run_cli(["covid", "--data-dir", covid_copy, "--out", tmp_path / "r"], capsys)
    assert code == 2 and "missing column(s) 'shop.2'" in err
    assert not (tmp_path / "r").exists()


def test_a_non_empty_out_dir_needs_overwrite(demo_dir, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "submission.csv").write_text("precious\n")
    (out / "metrics.json").write_text("{}\n")  # a finished run (no unfinished one to replace)
    args = [
        "demo",
        "--data-dir",
        demo_dir,
        "--out",
        out,
        "--quiet",
        "train.epochs=1",
        "cv.folds=2",
    ]
    code, _, err = run_cli(args, capsys)
    assert code == 2 and "--overwrite" in err
    assert (out / "submission.csv").read_text() == "precious\n"
    code, _, _ = run_cli([*args, "--overwrite"], capsys)
    assert code == 0
    assert (out / "submission.csv").read_text().startswith("id,label\n")


def test_demo_runs_end_to_end(demo_dir, tmp_path, capsys):
    out = tmp_path / "run"
    code, stdout, _ = run_cli(
        ["demo", "--data-dir", demo_dir, "--out", out, "--quiet", "train.epochs=15"], capsys
    )
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["metric"] == "accuracy" and len(metrics["fold_scores"]) == 5
    assert metrics["mean"] > 0.9  # digits are easy; a broken pipeline is not
    sub = pd.read_csv(out / "submission.csv")
    sample = pd.read_csv(demo_dir / "sample_submission.csv")
    assert list(sub.columns) == ["id", "label"] and sub["id"].equals(sample["id"])
    assert sub["label"].between(0, 9).all()
    assert np.load(out / "oof_proba.npy").shape == (1437, 10)
    assert "out-of-fold accuracy" in stdout
    assert metrics["monitor"] == "accuracy"  # auto: accuracy is not a metric of probabilities


@pytest.mark.parametrize("engine", ["fast", "plain"])
def test_train_monitor_loss_stops_on_the_validation_logloss(engine, demo_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "demo",
        "--data-dir",
        demo_dir,
        "--out",
        out,
        "--quiet",
        "train.epochs=4",
        "train.patience=1",
        "cv.folds=2",
        "cv.baseline=false",
        "train.monitor=loss",
        f"train.engine={engine}",
        "optim.lr=0.05",
    ]
    code, stdout, _ = run_cli(args, capsys)
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["monitor"] == "logloss" and metrics["metric"] == "accuracy"
    assert "early stopping and best epochs: on validation logloss" in stdout
    oof = pd.read_csv(out / "oof.csv")
    for k, score in enumerate(metrics["fold_scores"]):  # fold scores: still the accuracy
        fold = oof[oof["fold"] == k]
        assert score == pytest.approx((fold["prediction"] == fold["target"]).mean())
    # the best epoch of each fold is the one with the lowest validation logloss
    if engine == "fast":
        log = pd.read_csv(out / "logs" / "folds" / "metrics.csv")
        curves = [log[f"val/logloss/fold{k}"].dropna().to_numpy() for k in range(2)]
    else:
        curves = [
            pd.read_csv(out / "logs" / f"fold{k}" / "metrics.csv")["val/logloss"]
            .dropna()
            .to_numpy()
            for k in range(2)
        ]
    for k, curve in enumerate(curves):  # (the fast engine logs a stopped fold on to the end)
        run = curve[: metrics["epochs_run"][k]]
        assert len(run) == metrics["epochs_run"][k]
        assert metrics["best_epochs"][k] == int(np.argmin(run)) + 1


@pytest.mark.slow
def test_covid_defaults_beat_ridge_and_write_a_valid_submission(covid_dir, tmp_path):
    """The issue's acceptance command, through `python -m` as a user runs it."""
    out = tmp_path / "check"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            "covid",
            "--data-dir",
            str(covid_dir),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    sub = pd.read_csv(out / "submission.csv")
    sample = pd.read_csv(covid_dir / "sampleSubmission.csv")
    assert list(sub.columns) == list(sample.columns)
    assert sub["id"].equals(sample["id"])
    assert np.isfinite(sub["tested_positive"]).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["cv"] == {"strategy": "blocked", "folds": 5, "gap": 2}
    assert metrics["mean"] < metrics["baseline"]["mean"]
    oof = pd.read_csv(out / "oof.csv")
    assert len(oof) == 2700 and set(oof["fold"]) == set(range(5))
    assert "rmse" in result.stdout and "ridge" in result.stdout
    for name in ("config.yaml", "learning_curves.png", "checkpoints/fold4.ckpt"):
        assert (out / name).is_file()


@pytest.mark.slow
def test_data_parallel_training_with_two_processes(demo_dir, tmp_path):
    """Lightning's DDP strategy on two CPU processes: each trains on its share of the rows
    (TensorBatches shards by rank), rank 0 alone writes the run folder."""
    out = tmp_path / "ddp"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipeline.train",
            "demo",
            "--data-dir",
            str(demo_dir),
            "--out",
            str(out),
            "--quiet",
            "train.engine=plain",
            "train.accelerator=cpu",
            "train.devices=2",
            "train.strategy=ddp",
            "cv.folds=2",
            "train.epochs=4",
            "cv.baseline=false",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["fold_scores"]) == 2 and metrics["mean"] > 0.5
    sub = pd.read_csv(out / "submission.csv")
    assert len(sub) == len(pd.read_csv(demo_dir / "sample_submission.csv"))
