"""pipeline/engine/loggers.py and the log section: each experiment logger is Lightning's own and
receives every epoch of every fit (both engines) and the resolved config; a missing package is
one line naming the pip command, before anything is written; W&B never waits for a login."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pipeline.engine.loggers import run_name, wandb_offline
from pipeline.train import main

TINY = ["--quiet", "cv.folds=2", "train.epochs=3", "train.patience=0", "cv.baseline=false"]
ENGINES = [["train.engine=fast"], ["train.engine=plain"]]


def train(demo_dir, out: Path, *extra: str) -> int:
    return main(["demo", "--data-dir", str(demo_dir), "--out", str(out), *TINY, *extra])


@pytest.mark.parametrize("logger", ["tensorboard", "mlflow", "wandb"])
def test_a_missing_package_is_one_line_with_the_pip_command(
    logger, demo_dir, tmp_path, monkeypatch, capsys
):
    monkeypatch.setitem(sys.modules, logger, None)  # as if not installed: find_spec -> None
    assert train(demo_dir, tmp_path / "run", f"log.logger={logger}") == 2
    err = capsys.readouterr().err
    assert err == (
        f"error: log.logger={logger} needs the {logger} package; install it with "
        f'pip install -e ".[{logger}]" (or pip install {logger}).\n'
    )
    assert not (tmp_path / "run").exists()


def test_an_unknown_logger_lists_the_choices(demo_dir, tmp_path, capsys):
    assert train(demo_dir, tmp_path / "run", "log.logger=comet") == 2
    err = capsys.readouterr().err
    assert err.startswith("error: log.logger must be one of") and err.count("\n") == 1
    assert all(name in err for name in ("none", "tensorboard", "mlflow", "wandb"))


@pytest.mark.parametrize(
    ("name", "run"),
    [("20261207-120000", "20261207-120000"), (".20261207-120000.partial-4242", "20261207-120000")],
)
def test_the_run_is_named_after_its_final_folder(name, run):
    assert run_name(Path("runs/demo") / name) == run


@pytest.mark.parametrize(
    ("mode", "env", "netrc", "offline"),
    [
        ("offline", {"WANDB_API_KEY": "k"}, True, True),
        ("online", {}, False, False),
        ("auto", {}, False, True),  # not logged in: never a prompt
        ("auto", {}, True, False),  # `wandb login` wrote ~/.netrc
        ("auto", {"WANDB_API_KEY": "k"}, False, False),
        ("auto", {"WANDB_MODE": "disabled"}, False, False),  # W&B's own switch decides
    ],
)
def test_wandb_is_offline_unless_logged_in(mode, env, netrc, offline, tmp_path, monkeypatch):
    for name in ("WANDB_API_KEY", "WANDB_MODE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    if netrc:
        (tmp_path / ".netrc").write_text("machine api.wandb.ai\n  login user\n  password x\n")
        (tmp_path / ".netrc").chmod(0o600)
    assert wandb_offline(mode) is offline


@pytest.mark.slow
@pytest.mark.parametrize("engine", ENGINES, ids=["fast", "plain"])
def test_tensorboard_gets_every_epoch_of_every_fit_and_the_config(engine, demo_dir, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    assert train(demo_dir, out, "log.logger=tensorboard", *engine) == 0
    fits = sorted(p.name for p in (out / "logs" / "tensorboard").iterdir())
    assert fits == (["folds"] if "fast" in engine[0] else ["fold0", "fold1"])
    for fit in fits:
        events = EventAccumulator(str(out / "logs" / "tensorboard" / fit))
        events.Reload()
        values = events.Scalars("val/accuracy")
        assert len(values) == 3 and len({v.step for v in values}) == 3  # one point an epoch
        hparams = (out / "logs" / "tensorboard" / fit / "hparams.yaml").read_text()
        assert "model.hidden:" in hparams and "cv.folds: 2" in hparams
    if "fast" in engine[0]:
        assert {"val/accuracy/fold0", "val/accuracy/fold1"} <= set(events.Tags()["scalars"])


@pytest.mark.slow
def test_mlflow_gets_one_finished_run_per_fold(demo_dir, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    out = tmp_path / "run"
    args = ["log.logger=mlflow", f"log.uri={uri}", "log.project=course", "train.engine=plain"]
    assert train(demo_dir, out, *args) == 0
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("course")
    runs = client.search_runs([experiment.experiment_id])
    assert sorted(r.info.run_name for r in runs) == ["run fold0", "run fold1"]
    for r in runs:
        assert r.info.status == "FINISHED"
        assert r.data.params["cv.folds"] == "2" and r.data.tags["run"] == "run"
        history = client.get_metric_history(r.info.run_id, "val/accuracy")
        assert len(history) == 3


@pytest.mark.slow
def test_wandb_without_a_login_runs_offline_one_finished_run_per_fold(
    demo_dir, tmp_path, monkeypatch
):
    pytest.importorskip("wandb")
    for name in ("WANDB_API_KEY", "WANDB_MODE", "NETRC"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.netrc: not logged in
    out = tmp_path / "run"
    assert train(demo_dir, out, "log.logger=wandb", "train.engine=plain") == 0
    runs = sorted((out / "logs" / "wandb").glob("offline-run-*"))
    assert len(runs) == 2  # one W&B run per fold, each closed before the next began
    for run in runs:  # W&B's offline record holds the config and the epochs' metrics
        (record,) = run.glob("run-*.wandb")
        data = record.read_bytes()
        assert b"cv.folds" in data and b"val/accuracy" in data
