"""The three real public data sets of tests/data, each run end to end from its competition.yaml
as a user would: the submission is right in kind (class names, probabilities, values) and
scores sensibly against the held-out answers (solution.csv)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from pipeline.submit import main as submit_main
from pipeline.train import main as train_main

DATA = Path(__file__).resolve().parents[1] / "data"
FAST = ["--quiet", "train.epochs=25", "cv.folds=3"]


def run(folder: Path, out: Path, *extra: str) -> tuple[dict, pd.DataFrame]:
    code = train_main([str(folder), "--out", str(out), *FAST, *extra])
    assert code == 0
    return json.loads((out / "metrics.json").read_text()), pd.read_csv(out / "submission.csv")


def solution(name: str) -> pd.DataFrame:
    return pd.read_csv(DATA / name / "solution.csv")


def test_penguins_labels_are_class_names(tmp_path):
    metrics, sub = run(DATA / "penguins", tmp_path / "run")
    assert list(sub.columns) == ["id", "species"]
    assert set(sub.species) <= {"Adelie", "Chinstrap", "Gentoo"}
    truth = solution("penguins")
    assert (sub.id == truth.id).all()
    assert (sub.species == truth.species).mean() > 0.9
    names = {r["name"] for r in metrics["references"]}
    assert {"logistic_regression", "hist_gradient_boosting"} <= names
    assert 0.0 <= metrics["blend"]["nested_oof_score"] <= 1.0
    blend = pd.read_csv(tmp_path / "run" / "submission_blend.csv")
    assert set(blend.species) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert (
        submit_main(
            [
                "tests/data/penguins",
                str(tmp_path / "run" / "submission.csv"),
                "-m",
                "x",
                "--dry-run",
            ]
        )
        == 0
    )


def test_penguins_logloss_has_one_probability_column_per_class(tmp_path):
    folder = tmp_path / "penguins"
    shutil.copytree(DATA / "penguins", folder)
    sample = pd.read_csv(folder / "sample_submission.csv")[["id"]]
    for name in ["Gentoo", "Adelie", "Chinstrap"]:  # the sample's order, not the sorted one
        sample[name] = 1 / 3
    sample.to_csv(folder / "sample_submission.csv", index=False)
    yaml = (folder / "competition.yaml").read_text().replace("metric: accuracy", "metric: logloss")
    (folder / "competition.yaml").write_text(yaml)
    metrics, sub = run(folder, tmp_path / "run")
    assert list(sub.columns) == ["id", "Gentoo", "Adelie", "Chinstrap"]
    proba = sub.iloc[:, 1:].to_numpy()
    assert np.allclose(proba.sum(axis=1), 1.0, atol=1e-4) and (proba >= 0).all()
    truth = solution("penguins").species
    score = log_loss(truth, sub[["Adelie", "Chinstrap", "Gentoo"]].to_numpy())
    assert score < 0.3, score
    assert metrics["monitor"].endswith("logloss")


def test_titanic_submits_positive_class_probabilities(tmp_path):
    metrics, sub = run(DATA / "titanic", tmp_path / "run")
    assert list(sub.columns) == ["id", "survived"] and sub.id.iloc[0].startswith("P")
    assert sub.survived.between(0, 1).all() and sub.survived.nunique() > 10
    auc = roc_auc_score(solution("titanic").survived, sub.survived)
    assert auc > 0.8, auc
    assert metrics["metric"] == "auc"


def test_wage_regression_with_string_categoricals(tmp_path):
    metrics, sub = run(DATA / "wage", tmp_path / "run")
    assert list(sub.columns) == ["id", "wage"]
    rmse = float(np.sqrt(np.mean((sub.wage - solution("wage").wage) ** 2)))
    assert rmse < 40.0, rmse  # the constant sample submission scores 44.3
    assert metrics["n_train"] == 2250


def test_submission_csv_is_the_candidate_with_the_best_nested_score(tmp_path):
    """submission.csv is the file of the best honest out-of-fold score among the network,
    each reference and the blend (nested), and every candidate is written beside it."""
    metrics, sub = run(DATA / "wage", tmp_path / "run")
    chosen = metrics["recommended"]
    scores = chosen["scores"]
    assert set(scores) == {"network", "ridge", "hist_gradient_boosting", "lightgbm", "blend"}
    assert scores["network"] == pytest.approx(metrics["oof_score"])
    assert scores["blend"] == pytest.approx(metrics["blend"]["nested_oof_score"])
    assert chosen["score"] == min(scores.values())  # rmse: lower is better
    assert sub.equals(pd.read_csv(tmp_path / "run" / chosen["file"]))
    for name, file in chosen["files"].items():
        other = pd.read_csv(tmp_path / "run" / file)
        assert other.id.equals(sub.id) and np.isfinite(other.wage).all(), name
        argv = [str(DATA / "wage"), str(tmp_path / "run" / file), "-m", "x", "--dry-run"]
        assert submit_main(argv) == 0


@pytest.mark.parametrize("name", ["penguins", "wage", "titanic"])
def test_new_writes_a_yaml_that_trains(tmp_path, name, capsys):
    from pipeline.new import main as new_main

    folder = tmp_path / name
    shutil.copytree(
        DATA / name, folder, ignore=shutil.ignore_patterns("competition.yaml", "solution.csv")
    )
    assert (
        new_main([name, "--data-dir", str(folder), "--out", str(folder / "competition.yaml")]) == 0
    )
    printed = capsys.readouterr().out
    ours = (DATA / name / "competition.yaml").read_text()
    for key in ("id", "target"):
        line = next(x for x in ours.splitlines() if x.startswith(f"{key}:"))
        assert line in printed
    assert "# column types inferred" in printed


def test_a_competition_written_by_new_is_found_by_name(tmp_path, monkeypatch):
    from pipeline.competition.catalog import load_competition
    from pipeline.new import main as new_main

    folder = tmp_path / "files"
    shutil.copytree(DATA / "titanic", folder, ignore=shutil.ignore_patterns("competition.yaml"))
    monkeypatch.chdir(tmp_path)
    assert new_main(["ship", "--data-dir", str(folder)]) == 0
    assert (tmp_path / "competitions" / "ship" / "competition.yaml").is_file()
    competition = load_competition("ship")
    competition.prepare_data(folder)
    assert competition.metric.name == "auc" and competition.task.is_binary
    assert competition.command_name == "ship"
