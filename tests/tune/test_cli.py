"""python -m pipeline.tune end to end (in-process, demo competition, tiny trainer)."""

import contextlib
import io
import json
import re
import shutil

import numpy as np
import optuna
import pandas as pd
import pytest
from optuna.trial import TrialState

from pipeline.config import TrainConfig
from pipeline.train import main as train_main
from pipeline.tune import main
from pipeline.tune.plots import PLOTS
from pipeline.tune.pruners import FOLD_MEAN, FOLD_SCORES, PER_FOLD, list_pruners
from pipeline.tune.storage import default_url

QUICK = [
    "train.epochs=4",
    "train.patience=0",
    "cv.folds=3",
    "cv.baseline=false",
    "model.hidden=[32]",
]
SPACE = "optim.lr: {low: 1.0e-6, high: 1.0e+30, log: true}\nmodel.dropout: {low: 0.0, high: 0.3}\n"
GOOD, SLOW, NAN = 1e-2, 1e-6, 1e30  # learning rates: learns, barely moves, diverges at once


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def _enqueued(out, *rates):
    out.mkdir()
    study = optuna.create_study(storage=default_url(out), study_name="demo", direction="maximize")
    for lr in rates:
        study.enqueue_trial({"optim.lr": lr, "model.dropout": 0.1})


@pytest.fixture(scope="module")
def study_run(demo_dir, tmp_path_factory):
    """Five trials: two good ones, one that diverges, one that learns nothing, one sampled."""
    root = tmp_path_factory.mktemp("tune")
    out, space = root / "run", root / "space.yaml"
    space.write_text(SPACE)
    _enqueued(out, GOOD, GOOD * 0.7, NAN, SLOW)
    argv = [
        "demo",
        "--data-dir",
        demo_dir,
        "--out",
        out,
        "--space",
        space,
        "--trials",
        5,
        "--prune-after",
        2,
        "--warmup-epochs",
        1,
        "--top-k",
        3,
        *QUICK,
    ]
    code, stdout, stderr = run(argv)
    assert code == 0, stderr
    study = optuna.load_study(study_name="demo", storage=default_url(out))
    return {"out": out, "stdout": stdout, "stderr": stderr, "study": study, "root": root}


def test_the_study_ends_with_exactly_the_requested_trials(study_run):
    trials = study_run["study"].get_trials()
    states = [t.state for t in trials]
    assert len(trials) == 5 and TrialState.RUNNING not in states
    assert all(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states)


def test_a_diverging_trial_is_recorded_and_the_study_goes_on(study_run):
    nan = study_run["study"].trials[2]
    assert nan.params["optim.lr"] == NAN
    assert nan.state == TrialState.PRUNED
    assert nan.user_attrs["reason"].startswith("diverged: fold 1: the loss or validation accuracy")
    assert "trial 2 pruned: diverged" in study_run["stderr"]
    assert study_run["study"].trials[4].state in (TrialState.COMPLETE, TrialState.PRUNED)


def test_an_obviously_bad_config_is_pruned_before_finishing_its_folds(study_run):
    good, slow = study_run["study"].trials[0], study_run["study"].trials[3]
    assert good.state == TrialState.COMPLETE and good.value > 0.8
    assert slow.state == TrialState.PRUNED
    assert slow.user_attrs["reason"].startswith("pruned at ")
    assert len(slow.intermediate_values) < len(good.intermediate_values)
    assert len(good.user_attrs["fold_scores"]) == 3
    if good.user_attrs["steps"] == FOLD_MEAN:  # the folds trained together: mean per epoch
        assert sorted(good.intermediate_values) == [0, 1, 2, 3]
        assert slow.user_attrs["reason"].startswith("pruned at epoch 2 (mean over folds)")


@pytest.mark.skipif(
    "engine" not in TrainConfig.__dataclass_fields__, reason="one engine only: tested above"
)
def test_one_fit_per_fold_reports_fold_steps_and_prunes_in_the_first_fold(demo_dir, tmp_path):
    out, space = tmp_path / "run", tmp_path / "space.yaml"
    space.write_text(SPACE)
    _enqueued(out, GOOD, GOOD * 0.7, SLOW)
    argv = [
        "demo",
        "--data-dir",
        demo_dir,
        "--out",
        out,
        "--space",
        space,
        "--trials",
        3,
        "--prune-after",
        2,
        "--warmup-epochs",
        1,
        "--no-final",
        *QUICK,
        "train.engine=plain",
    ]
    code, _, err = run(argv)
    assert code == 0, err
    study = optuna.load_study(study_name="demo", storage=default_url(out))
    good, slow = study.trials[0], study.trials[2]
    stride = study.user_attrs["stride"]
    assert good.user_attrs["steps"] == PER_FOLD
    # fold k, epoch e is reported on step k * stride + e: 3 folds x 4 epochs, no collision
    assert sorted(good.intermediate_values) == [k * stride + e for k in range(3) for e in range(4)]
    assert slow.state == TrialState.PRUNED
    assert slow.user_attrs["reason"].startswith("pruned at fold 1, epoch 2")
    assert max(slow.intermediate_values) < stride  # it never reached fold 2


def test_best_yaml_replayed_by_train_reproduces_the_best_cv_score(study_run, demo_dir):
    best = study_run["study"].best_trial
    best_yaml = study_run["out"] / "best.yaml"
    text = best_yaml.read_text()
    assert f"python -m pipeline.train demo --config {best_yaml}" in text
    replay = study_run["root"] / "replay"
    argv = ["demo", "--data-dir", demo_dir, "--out", replay, "--config", best_yaml, "--quiet"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert train_main([str(a) for a in argv]) == 0
    metrics = json.loads((replay / "metrics.json").read_text())
    assert metrics["oof_score"] == pytest.approx(best.value, abs=1e-9)
    assert metrics["cv"]["folds"] == 3  # the tuning command's overrides are part of best.yaml
    final = json.loads((study_run["out"] / "metrics.json").read_text())
    assert final["oof_score"] == pytest.approx(best.value, abs=1e-9)  # the final fit, too


def test_the_run_ends_in_a_submission_an_ensemble_plots_and_a_summary(study_run, demo_dir):
    out, stdout = study_run["out"], study_run["stdout"]
    sample = pd.read_csv(demo_dir / "sample_submission.csv")
    for path in (out / "submission.csv", out / "ensemble" / "submission.csv"):
        sub = pd.read_csv(path)
        assert list(sub.columns) == ["id", "label"] and sub["id"].equals(sample["id"])
    for name in PLOTS:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "tune.json").read_text())
    assert summary["pruner"] == {
        "kind": "median",
        "n_startup": 2,
        "warmup": 1,
        "percentile": 50.0,
        "p_threshold": 0.1,
    }
    complete = [t for t in study_run["study"].trials if t.state == TrialState.COMPLETE]
    ens = summary["ensemble"]
    assert (
        ens["k"] == min(3, len(complete))
        and ens["trials"][0] == study_run["study"].best_trial.number
    )
    # the ensemble's OOF score is the score of the averaged saved OOF predictions
    train = pd.read_csv(demo_dir / "train.csv")
    probs = np.mean([np.load(out / "trials" / f"{n:05d}" / "oof.npy") for n in ens["trials"]], 0)
    assert ens["oof_score"] == pytest.approx(np.mean(probs.argmax(1) == train["label"].to_numpy()))
    assert re.search(r"best trial \d+: accuracy 0\.\d{4}\s+optim\.lr=", stdout)
    assert "top-" in stdout and "ensemble" in stdout and "best single trial" in stdout
    assert f"optuna-dashboard sqlite:///{out.resolve()}/study.db" in stdout.replace("\n", "")


def test_the_saved_trials_are_blend_members(study_run, demo_dir):
    """A tune folder's best saved trials (or one trial folder) blend with pipeline.blend: each
    trial saved its folds and trial.json, and the blend reads its predictions back."""
    from pipeline.blend import main as blend_main

    out, study = study_run["out"], study_run["study"]
    best = sorted(
        (t for t in study.trials if t.state == TrialState.COMPLETE),
        key=lambda t: (-t.value, t.number),
    )
    trial = json.loads((out / "trials" / f"{best[0].number:05d}" / "trial.json").read_text())
    assert trial["value"] == best[0].value and trial["cv"]["folds"] == 3
    blended = study_run["root"] / "blend"
    picked = best[:2] + best[2:3]  # the 2 best from the tune folder, a third by its folder
    one = [out / "trials" / str(t.number) for t in best[2:3]]  # names trials/0000<n>
    argv = ["demo", out, *one, "--top-k", 2, "--data-dir", demo_dir, "--out", blended, "--quiet"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert blend_main([str(a) for a in argv]) == 0
    metrics = json.loads((blended / "metrics.json").read_text())
    assert [m["name"] for m in metrics["members"]] == [f"run/trial {t.number}" for t in picked]
    for member, t in zip(metrics["members"], picked, strict=True):
        assert member["oof_score"] == pytest.approx(t.value, abs=1e-9)
    assert metrics["oof_score"] <= metrics["in_sample_oof_score"] + 1e-12  # accuracy: higher
    assert pd.read_csv(blended / "submission.csv").columns.tolist() == ["id", "label"]


def test_trials_saved_before_trial_json_borrow_the_final_fits_folds(study_run, demo_dir, tmp_path):
    from pipeline.blend import main as blend_main

    old = tmp_path / "old"
    shutil.copytree(study_run["out"], old)
    for name in ("trial.json", "folds.npy"):
        for path in old.glob(f"trials/*/{name}"):
            path.unlink()
    argv = ["demo", old, "--top-k", 2, "--data-dir", demo_dir, "--out", tmp_path / "b", "--quiet"]
    with contextlib.redirect_stdout(io.StringIO()):
        assert blend_main([str(a) for a in argv]) == 0
    best = study_run["study"].best_trial
    metrics = json.loads((tmp_path / "b" / "metrics.json").read_text())
    assert metrics["members"][0]["name"] == f"old/trial {best.number}"
    assert metrics["members"][0]["oof_score"] == pytest.approx(best.value, abs=1e-9)
    tune = json.loads((old / "tune.json").read_text())
    (old / "tune.json").write_text(json.dumps({**tune, "params": ["seed"]}))
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert blend_main([str(a) for a in argv[:-1] + ["--overwrite"]]) == 2
    assert "has no folds.npy (saved by an older pipeline.tune)" in err.getvalue()


def test_a_finished_study_is_not_run_again(study_run, demo_dir):
    """Running the command again on a complete study adds no trial."""
    out = study_run["out"]
    argv = [
        "demo",
        "--data-dir",
        demo_dir,
        "--out",
        out,
        "--space",
        study_run["root"] / "space.yaml",
        "--trials",
        5,
        "--no-final",
        *QUICK,
    ]
    code, _, err = run(argv)
    assert code == 0, err
    assert len(optuna.load_study(study_name="demo", storage=default_url(out)).trials) == 5


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--trials", "0"], r"--trials must be an int >= 1; got 0"),
        (["--timeout", "0"], r"--timeout must be a positive number of seconds; got 0"),
        (["--pruner", "asha"], r"argument --pruner: invalid choice: 'asha'"),
        (["--prune-p", "1.5"], r"--prune-p must be in \(0, 1\); got 1.5"),
        (["model.dropout=0.2"], r"model.dropout is both set on the command line and searched"),
        (["--storage", "nonsense"], r"--storage 'nonsense' is not a storage URL"),
        (
            ["--storage", "journal:/nonexistent/dir/j.log"],
            r"the folder /nonexistent/dir does not exist",
        ),
        (
            ["--storage", "postgresql+psycopg2://u:secret@127.0.0.1:1/db"],
            r"Cannot open --storage postgresql\+psycopg2://u:\*\*\*@127.0.0.1:1/db",
        ),
        (
            ["--storage", "postgresql+psycopg2://u:secret@127.0.0.1:abc/db"],
            r"--storage postgresql\+psycopg2://u:\*\*\*@127.0.0.1:abc/db is not a valid URL: .*"
            r"the port after HOST: must be a number",
        ),
        (["--space", "/nonexistent.yaml"], r"Search space file /nonexistent.yaml does not exist"),
        (["model.dropuot=0.2"], r"Unknown config key 'model.dropuot'"),
    ],
)
def test_user_errors_are_one_line_exit_2(extra, message, demo_dir, tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    out = tmp_path / "run"
    code, stdout, err = run(
        ["demo", "--data-dir", demo_dir, "--out", out, "--space", space, *extra]
    )
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("error: ") and "Traceback" not in err
    assert re.search(message, err), err
    assert "secret" not in err


def test_the_folder_of_another_run_is_refused(demo_dir, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "submission.csv").write_text("precious\n")
    space = tmp_path / "space.yaml"
    space.write_text(SPACE)
    code, _, err = run(["demo", "--data-dir", demo_dir, "--out", out, "--space", space, *QUICK])
    assert code == 2 and "holds files of another run" in err and "--overwrite" in err
    assert (out / "submission.csv").read_text() == "precious\n"


def test_an_impossible_trial_is_pruned_with_its_reason(demo_dir, tmp_path):
    """A combination only a trial can reveal (group norm that does not divide a width)."""
    space = tmp_path / "space.yaml"
    space.write_text("model.norm_groups: [3, 4]\n")
    out = tmp_path / "run"
    out.mkdir()
    study = optuna.create_study(storage=default_url(out), study_name="demo", direction="maximize")
    study.enqueue_trial({"model.norm_groups": 3})
    argv = [
        "demo",
        "--data-dir",
        demo_dir,
        "--out",
        out,
        "--space",
        space,
        "--trials",
        1,
        "--no-final",
        "model.norm=group",
        *QUICK,
    ]
    code, _, err = run(argv)
    assert code == 0, err
    (trial,) = optuna.load_study(study_name="demo", storage=default_url(out)).trials
    assert trial.state == TrialState.PRUNED
    assert trial.user_attrs["reason"].startswith("impossible config: ")
    assert "divide" in trial.user_attrs["reason"]


@pytest.mark.parametrize("pruner", list_pruners())
def test_every_pruner_runs_a_study_and_none_prunes_nothing(pruner, demo_dir, tmp_path):
    out, space = tmp_path / "run", tmp_path / "space.yaml"
    space.write_text(SPACE)
    _enqueued(out, GOOD, GOOD * 0.7, SLOW)  # SLOW is pruned by median at this point (above)
    argv = [
        "demo",
        "--data-dir",
        demo_dir,
        "--out",
        out,
        "--space",
        space,
        "--trials",
        3,
        "--pruner",
        pruner,
        "--prune-after",
        2,
        "--warmup-epochs",
        1,
        "--no-final",
        *QUICK,
    ]
    code, _, err = run(argv)
    assert code == 0, err
    study = optuna.load_study(study_name="demo", storage=default_url(out))
    assert len(study.trials) == 3
    if pruner == "none":
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    else:
        assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials)


@pytest.mark.parametrize("engine", ["plain", "fast"])
def test_wilcoxon_prunes_a_trial_clearly_worse_than_the_best_and_keeps_a_better_one(
    engine, demo_dir, tmp_path
):
    out, space = tmp_path / "run", tmp_path / "space.yaml"
    space.write_text(SPACE)
    _enqueued(out, SLOW, GOOD, SLOW * 2)  # the first learns nothing, the second is far better
    argv = [
        "demo",
        "--data-dir",
        demo_dir,
        "--out",
        out,
        "--space",
        space,
        "--trials",
        3,
        "--pruner",
        "wilcoxon",
        "--prune-p",
        0.3,
        "--prune-after",
        1,
        "--warmup-epochs",
        1,
        "--no-final",
        *QUICK,
        f"train.engine={engine}",
    ]
    code, _, err = run(argv)
    assert code == 0, err
    first, good, slow = optuna.load_study(study_name="demo", storage=default_url(out)).trials
    assert first.state == good.state == TrialState.COMPLETE and good.value > first.value
    assert slow.state == TrialState.PRUNED
    if engine == "plain":  # one score per fold, paired with the best trial's: 2 of 3 folds run
        assert good.user_attrs["steps"] == FOLD_SCORES
        assert good.intermediate_values == dict(enumerate(good.user_attrs["fold_scores"]))
        assert slow.user_attrs["reason"].startswith(
            "pruned after fold 2: worse than best trial 1 on the same folds 1-2"
        )
        assert sorted(slow.intermediate_values) == [0, 1]
    else:  # the mean over folds per epoch, paired with the best trial's curve
        assert good.user_attrs["steps"] == FOLD_MEAN
        assert slow.user_attrs["reason"].startswith(
            "pruned at epoch 2 (mean over folds): worse than best trial 1 on the same 2 epochs"
        )


class _Exploding:
    """Stands in for CrossValidator: every fit raises `error`."""

    error: BaseException = RuntimeError()

    def __init__(self, *args, **kwargs):
        pass

    def fit(self, train, **given):
        raise self.error


def test_out_of_memory_prunes_the_trial_and_the_study_goes_on(demo_dir, tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr("pipeline.tune.objective.CrossValidator", _Exploding)
    monkeypatch.setattr(
        _Exploding, "error", torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB")
    )
    out, space = tmp_path / "run", tmp_path / "space.yaml"
    space.write_text(SPACE)
    argv = ["demo", "--data-dir", demo_dir, "--out", out, "--space", space, "--trials", 2, *QUICK]
    code, _, err = run(argv)
    study = optuna.load_study(study_name="demo", storage=default_url(out))
    assert [t.state for t in study.trials] == [TrialState.PRUNED] * 2
    assert all(
        t.user_attrs["reason"] == "out of memory: CUDA out of memory. Tried to allocate 2 GiB"
        for t in study.trials
    )
    # no trial completed: one line that says why, not a traceback
    assert code == 2 and err.splitlines()[-1].startswith(
        "error: No trial of study 'demo' completed (2 out of memory)"
    )


def test_unexpected_errors_fail_trials_with_their_reason_then_stop_as_a_bug(
    demo_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr("pipeline.tune.objective.CrossValidator", _Exploding)
    monkeypatch.setattr(_Exploding, "error", ValueError("boom"))
    out, space = tmp_path / "run", tmp_path / "space.yaml"
    space.write_text(SPACE)
    argv = ["demo", "--data-dir", demo_dir, "--out", out, "--space", space, "--trials", 9, *QUICK]
    with pytest.raises(ValueError, match="boom"):  # bugs keep their traceback
        run(argv)
    study = optuna.load_study(study_name="demo", storage=default_url(out))
    assert [t.state for t in study.trials] == [TrialState.FAIL] * 3  # three in a row, then stop
    assert {t.user_attrs["reason"] for t in study.trials} == {"error: ValueError: boom"}
