"""python -m pipeline.tune COMP --reference lightgbm: LightGBM's settings (the config's lightgbm
section) searched on the run's folds, the best replayed by the final run and by best.yaml."""

import argparse
import contextlib
import dataclasses
import io
import json
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from pipeline.competition.catalog import load_competition
from pipeline.config import LightGBMConfig, build_config
from pipeline.ensemble import references
from pipeline.errors import ConfigError
from pipeline.run.inputs import resolve_config
from pipeline.tune import main
from pipeline.tune.cli import with_reference
from pipeline.tune.storage import default_url

WAGE = Path(__file__).resolve().parents[1] / "data" / "wage"


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def test_the_reference_is_tuned_on_the_runs_folds_and_its_best_settings_replay(tmp_path):
    out = tmp_path / "tune"
    argv = [WAGE, "--reference", "lightgbm", "--trials", 4, "--top-k", 2, "--out", out,
            "--quiet", "train.epochs=1"]  # fmt: skip
    code, stdout, err = run(argv)
    assert code == 0, err
    summary = json.loads((out / "tune.json").read_text())
    values = [t["value"] for t in summary["top"]]
    assert len(set(values)) == len(values) == 4  # the settings change what LightGBM learns
    assert all(p.startswith("lightgbm.") for t in summary["top"] for p in t["params"])
    # the final run refits LightGBM with the best trial's settings on the same folds
    assert summary["final"]["reference_oof_score"] == pytest.approx(summary["best"]["value"])
    assert "lightgbm out-of-fold rmse" in stdout and "submission.csv holds the" in stdout
    best = yaml.safe_load((out / "best.yaml").read_text())
    assert set(best["lightgbm"]) == {p.split(".")[1] for p in summary["best"]["params"]}
    assert len(list((out / "trials").iterdir())) == 2  # the top-k trials' predictions
    metrics = json.loads((out / "metrics.json").read_text())
    assert "lightgbm" in [r["name"] for r in metrics["references"]]
    # trial 0 scores LightGBM's defaults (reg_alpha's 0 at the low end of its log range)
    first = optuna.load_study(study_name="wage", storage=default_url(out)).trials[0]
    defaults = dataclasses.asdict(LightGBMConfig())
    expected = {
        f"lightgbm.{key}": 1e-3 if key == "reg_alpha" else defaults[key]
        for key in ("learning_rate", "num_leaves", "min_child_samples", "subsample",
                    "colsample_bytree", "reg_lambda", "reg_alpha")
    }  # fmt: skip
    assert first.params == expected


def test_the_config_section_reaches_the_estimator(monkeypatch):
    competition = load_competition(str(WAGE))
    cfg = resolve_config(competition, None, ["lightgbm.num_leaves=7", "lightgbm.reg_alpha=0.5"])
    train = competition.load_train(WAGE)
    built = []
    real = references.lightgbm_model

    def spy(*args, **kwargs):
        model = real(*args, **kwargs)
        built.append(model.get_params())
        return model

    monkeypatch.setattr(references, "lightgbm_model", spy)
    n = len(train.y)
    splits = [(np.arange(n // 2, n), np.arange(n // 2)), (np.arange(n // 2), np.arange(n // 2, n))]
    references.reference_predictions(competition, cfg, train, splits, names=["lightgbm"])
    assert len(built) == 2
    assert all(p["num_leaves"] == 7 and p["reg_alpha"] == 0.5 for p in built)
    assert all(p["learning_rate"] == 0.05 for p in built)  # the rest stays at the defaults


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lightgbm.subsample=1.5", r"lightgbm.subsample must be a float in \(0, 1\]"),
        ("lightgbm.num_leaves=1", r"lightgbm.num_leaves must be an int >= 2"),
        ("lightgbm.num_leafs=8", r"Unknown config key 'lightgbm.num_leafs'"),
    ],
)
def test_bad_settings_are_refused_by_the_config(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config(None, [], [override])


def test_a_competition_without_the_reference_gets_it_for_the_whole_study():
    demo = load_competition("demo")
    args = argparse.Namespace(reference="lightgbm", config=None, overrides=["cv.baseline=false"])
    extra = with_reference(demo, args)
    cfg = resolve_config(demo, None, extra)
    assert cfg.cv.baseline and "lightgbm" in cfg.cv.references
    assert extra[0] == "cv.baseline=false"  # the user's own overrides first, then the fixes


def test_a_space_with_other_keys_is_refused_before_any_file(tmp_path):
    space = tmp_path / "space.yaml"
    space.write_text("optim.lr: {low: 1.0e-3, high: 1.0e-2, log: true}\n")
    out = tmp_path / "tune"
    argv = [WAGE, "--reference", "lightgbm", "--space", space, "--trials", 2, "--out", out]
    code, _, err = run(argv)
    assert code == 2 and err.count("\n") == 1
    assert "--reference lightgbm searches lightgbm.* keys only" in err and "optim.lr" in err
    assert not out.exists()
