"""python -m pipeline.blend: members that do not line up are refused in one line, a noise
member gets no weight, the nested score never beats the in-sample one, class probabilities
blend into probabilities, and the folder is a run folder with a valid submission.

The member runs here are written by hand (the files pipeline/run/fit.py writes, predictions of
our choosing) so each test takes a second; test_tune_cli.py blends real trials and
test_blend_end_to_end_of_two_train_runs real pipeline.train runs."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.blend import main
from pipeline.engine.splits import make_splits
from pipeline.ensemble.members import run_info
from pipeline.io import write_csv, write_json, write_npy
from pipeline.run.inputs import load_inputs
from pipeline.run.provenance import collect
from pipeline.train import main as train_main

DATA = Path(__file__).parent / "data"
WAGE, PENGUINS = str(DATA / "wage"), str(DATA / "penguins")


@pytest.fixture(scope="module")
def wage():
    return _data(WAGE)


@pytest.fixture(scope="module")
def penguins():
    return _data(PENGUINS)


def _data(name: str):
    ns = argparse.Namespace(competition=name, config=None, overrides=[], data_dir=None)
    inputs = load_inputs(ns)
    splits = make_splits(inputs.cfg.cv, inputs.train, 0, inputs.competition.task.is_classification)
    folds = np.full(len(inputs.train.y), -1)
    for k, (_, va) in enumerate(splits):
        folds[va] = k
    return inputs, folds


def fake_run(folder: Path, data, oof, test, **changes) -> Path:
    """A run folder as pipeline.train writes it, holding the given predictions."""
    inputs, folds = data
    competition, train = inputs.competition, inputs.train
    task = competition.task
    info = run_info(
        competition, inputs.cfg, len(train.y), len(inputs.test.ids), train.ids, inputs.test.ids
    )
    info.update(changes.pop("info", {}))
    frame = pd.DataFrame(
        {
            "id": train.ids,
            "fold": changes.pop("folds", folds),
            "target": train.y,
            "prediction": task.to_labels(oof),
        }
    )
    frame = changes.pop("frame", lambda f: f)(frame)
    kind = "proba" if task.is_classification else "pred"
    write_npy(folder / f"oof_{kind}.npy", oof)
    write_npy(folder / f"test_{kind}.npy", test)
    write_csv(folder / "oof.csv", frame)
    data_dir = changes.pop("data_dir", inputs.data_dir)
    if data_dir is not None:  # what the run read, as pipeline/run/fit.py records it
        write_json(folder / "provenance.json", collect(data_dir, competition.files))
    write_json(folder / "metrics.json", {**info, "oof_score": 0.0})
    return folder


def blend(*argv) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def regression_members(data, tmp_path: Path, seed: int = 0, **changes) -> tuple[Path, Path]:
    """One member is the truth plus noise, the other pure noise of the same scale."""
    inputs, _ = data
    y, n_test = inputs.train.y.astype(np.float64), len(inputs.test.ids)
    rng = np.random.default_rng(seed)
    good = fake_run(
        tmp_path / "good",
        data,
        y + rng.normal(size=len(y)) * 0.3 * y.std(),
        rng.normal(size=n_test) + y.mean(),
        **changes,
    )
    noise = fake_run(
        tmp_path / "noise", data, rng.permutation(y), rng.normal(size=n_test), **changes
    )
    return good, noise


CHANGES = {  # how the second member differs -> what the one line says
    "folds": (lambda d: {"folds": np.roll(d[1], 7)}, r"puts [\d,]+ rows in other folds than"),
    "cv": (
        lambda d: {"info": {"cv": {"strategy": "kfold", "folds": 3, "gap": 0}}},
        r"used 3-fold kfold CV, run .* 5-fold kfold CV; blend members must share",
    ),
    "ids": (
        lambda d: {"frame": lambda f: f.assign(id=f.id.where(f.index != 4, "x"))},
        r"has id x in row 5, the training data \S+: it was trained on other rows",
    ),
    "rows": (
        lambda d: {"frame": lambda f: f.iloc[:-3]},
        r"has 2,247 out-of-fold rows; the "
        r"training data has 2,250",
    ),
    "task": (
        lambda d: {"info": {"task": {"kind": "classification", "n_classes": 3}}},
        r"is a 3-class classification run; wage is a regression",
    ),
    "competition": (
        lambda d: {"info": {"competition": "penguins"}},
        r"is a penguins run; this blend is of wage",
    ),
    "target": (
        lambda d: {"frame": lambda f: f.assign(target=f.target + 1.0)},
        r"has target .* in row 1, the training data .*: it was trained on another file",
    ),
}


@pytest.mark.parametrize("change", CHANGES)
def test_members_that_differ_are_refused_in_one_line(change, wage, tmp_path):
    good, _ = regression_members(wage, tmp_path)
    inputs = wage[0]
    y = inputs.train.y.astype(np.float64)
    make, message = CHANGES[change]
    other = fake_run(tmp_path / "other", wage, y, np.zeros(len(inputs.test.ids)), **make(wage))
    code, _, err = blend(WAGE, good, other, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and err.startswith("error: "), err
    assert str(other) in err
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (lambda g: [g, g], r"is given twice; each run is one member"),
        (lambda g: [g.parent], r"is not a run folder \(no metrics.json\)"),
        (lambda g: [g / "nope"], r"nope is not a folder"),
        (lambda g: [g, "--method", "best"], r"argument --method: invalid choice: 'best'"),
    ],
)
def test_bad_command_lines_are_one_line(args, message, wage, tmp_path):
    good, _ = regression_members(wage, tmp_path)
    code, _, err = blend(WAGE, *args(good), "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1, err
    assert re.search(message, err), err


def test_a_run_without_saved_predictions_names_the_fix(wage, tmp_path):
    good, noise = regression_members(wage, tmp_path)
    (noise / "oof_pred.npy").unlink()
    code, _, err = blend(WAGE, good, noise, "--out", tmp_path / "out")
    assert code == 2 and "has no saved predictions" in err and "train it again" in err


@pytest.mark.parametrize("method", ["caruana", "nnls"])
def test_the_noise_member_gets_no_weight_and_the_folder_is_a_run(method, wage, tmp_path):
    good, noise = regression_members(wage, tmp_path)
    out = tmp_path / "out"
    code, stdout, err = blend(WAGE, noise, good, "--method", method, "--out", out)
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["weights"]["noise"] < 0.05 and metrics["weights"]["good"] > 0.95
    assert [m["name"] for m in metrics["members"]] == ["noise", "good"]
    assert metrics["best_member"]["name"] == "good"
    assert metrics["oof_score"] >= metrics["in_sample_oof_score"] - 1e-12  # rmse: lower wins
    sub = pd.read_csv(out / "submission.csv")
    sample = pd.read_csv(DATA / "wage" / "sample_submission.csv")
    assert list(sub.columns) == list(sample.columns) and sub.iloc[:, 0].equals(sample.iloc[:, 0])
    oof = pd.read_csv(out / "oof.csv")
    assert list(oof.columns) == ["id", "fold", "target", "prediction", "prediction_in_sample"]
    assert (out / "blend.png").read_bytes()[:4] == b"\x89PNG" and (out / ".complete").is_file()
    assert "nested out-of-fold rmse" in stdout.replace("\n", " ")
    # a finished blend is replaced only with --overwrite
    code, _, err = blend(WAGE, noise, good, "--out", out)
    assert code == 2 and "--overwrite" in err
    assert blend(WAGE, noise, good, "--out", out, "--overwrite", "--quiet")[0] == 0


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("method", ["caruana", "nnls", "mean"])
def test_the_nested_score_never_beats_the_in_sample_one(method, seed, wage, tmp_path):
    """Three members that are each partly right: the weights matter, and fitted on all rows
    they score at least as well as weights that never saw the fold."""
    inputs, _ = wage
    y = inputs.train.y.astype(np.float64)
    rng = np.random.default_rng(seed)
    runs = [
        fake_run(
            tmp_path / f"m{i}",
            wage,
            y + rng.normal(size=len(y)) * y.std() * s,
            np.zeros(len(inputs.test.ids)),
        )
        for i, s in enumerate((0.5, 0.7, 1.0))
    ]
    code, _, err = blend(WAGE, *runs, "--method", method, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["oof_score"] >= metrics["in_sample_oof_score"] - 1e-12
    if method == "mean":
        assert metrics["oof_score"] == pytest.approx(metrics["equal_weights_oof_score"])


def test_class_probabilities_blend_into_probabilities(penguins, tmp_path):
    inputs, _ = penguins
    y, k, n_test = inputs.train.y, inputs.competition.task.n_classes, len(inputs.test.ids)
    rng = np.random.default_rng(0)

    def proba(n, hot=None):
        z = rng.normal(size=(n, k)) + (3.0 * np.eye(k)[hot] if hot is not None else 0.0)
        return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)

    tests = [proba(n_test), proba(n_test)]
    a = fake_run(tmp_path / "a", penguins, proba(len(y), y), tests[0])
    b = fake_run(tmp_path / "b", penguins, proba(len(y), y), tests[1])
    out = tmp_path / "out"
    code, _, err = blend(PENGUINS, a, b, "--method", "nnls", "--out", out, "--quiet")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    w = [metrics["weights"]["a"], metrics["weights"]["b"]]
    test = np.load(out / "test_proba.npy")
    np.testing.assert_allclose(test, w[0] * tests[0] + w[1] * tests[1], atol=1e-12)
    np.testing.assert_allclose(test.sum(axis=1), 1.0, atol=1e-12)
    oof = np.load(out / "oof_proba.npy")
    np.testing.assert_allclose(oof.sum(axis=1), 1.0, atol=1e-12)
    sub = pd.read_csv(out / "submission.csv")
    names = np.array(inputs.competition.class_names())
    assert (sub.species.to_numpy() == names[test.argmax(axis=1)]).all()  # no sample reorder
    assert metrics["task"] == {"kind": "classification", "n_classes": 3}


def test_references_join_on_the_members_folds_and_other_folds_are_refused(penguins, tmp_path):
    inputs, folds = penguins
    y, k, n_test = inputs.train.y, inputs.competition.task.n_classes, len(inputs.test.ids)
    uniform = np.full((len(y), k), 1.0 / k)
    a = fake_run(tmp_path / "a", penguins, uniform, np.full((n_test, k), 1.0 / k))
    code, _, err = blend(PENGUINS, a, "--references", "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert [m["name"] for m in metrics["members"]] == [
        "a",
        "logistic_regression (all columns)",
        "hist_gradient_boosting (all columns)",
        "lightgbm (all columns)",
    ]
    assert metrics["weights"]["a"] < 0.05  # knows nothing
    lightgbm = metrics["members"][-1]
    assert lightgbm["oof_score"] > 0.9 and len(lightgbm["fold_scores"]) == 5
    assert metrics["best_member"]["oof_score"] > 0.9
    other = fake_run(
        tmp_path / "other",
        penguins,
        uniform,
        np.full((n_test, k), 1.0 / k),
        folds=np.roll(folds, 1),
    )
    code, _, err = blend(PENGUINS, other, "--references", "--out", tmp_path / "o2")
    assert code == 2 and err.count("\n") == 1
    assert "--references: the folds of 5-fold kfold CV (seed 0) are not those of run" in err
    assert not (tmp_path / "o2").exists()  # refused before LightGBM or any member was fitted


@pytest.mark.slow
def test_blend_end_to_end_of_two_train_runs(covid_dir, tmp_path):
    """Real pipeline.train runs on COVID's blocked folds, one on the selected groups and one
    on all columns: their files are read back and the submission is valid."""
    quick = ["--data-dir", str(covid_dir), "--quiet", "train.epochs=5", "cv.baseline=false"]
    for name, extra in (("groups", []), ("all", ["features.select=all"])):
        with contextlib.redirect_stdout(io.StringIO()):
            assert train_main(["covid", "--out", str(tmp_path / name), *quick, *extra]) == 0
    assert (tmp_path / "groups" / "oof_pred.npy").is_file()
    out = tmp_path / "blend"
    code, _, err = blend(
        "covid",
        tmp_path / "groups",
        tmp_path / "all",
        "--data-dir",
        covid_dir,
        "--out",
        out,
        "--quiet",
    )
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert [m["name"] for m in metrics["members"]] == ["groups", "all"]
    assert metrics["cv"] == {"strategy": "blocked", "folds": 5, "gap": 2}
    for m in metrics["members"]:
        ran = json.loads((tmp_path / m["name"] / "metrics.json").read_text())
        assert m["oof_score"] == pytest.approx(ran["oof_score"], rel=1e-5)  # the same numbers
    assert metrics["oof_score"] >= metrics["in_sample_oof_score"] - 1e-12
    sample = pd.read_csv(covid_dir / "sampleSubmission.csv")
    sub = pd.read_csv(out / "submission.csv")
    assert list(sub.columns) == ["id", "tested_positive"] and sub.id.equals(sample.id)


def _reordered_test_rows(tmp_path: Path) -> Path:
    """The wage files with test.csv's rows reversed (the same ids, in another order)."""
    folder = tmp_path / "reversed"
    shutil.copytree(DATA / "wage", folder)
    lines = (folder / "test.csv").read_text().splitlines()
    (folder / "test.csv").write_text("\n".join([lines[0], *lines[:0:-1]]) + "\n")
    return folder


def test_a_data_folder_whose_test_rows_are_reordered_is_refused(wage, tmp_path):
    """Counting rows is not enough: test.csv holds the same ids in reverse, and the members'
    test predictions would land on other ids. Refused, naming the file."""
    good, noise = regression_members(wage, tmp_path)
    data = _reordered_test_rows(tmp_path)
    code, _, err = blend(WAGE, good, noise, "--data-dir", data, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1, err
    assert re.search(
        rf"run {good} was trained on another test.csv: {good}/provenance.json records sha256 "
        rf"\w{{12}}\.\.\., {data}/test.csv has \w{{12}}\.\.\.; blend runs of the same files",
        err,
    ), err
    assert not (tmp_path / "out").exists()


def test_a_member_that_predicted_other_test_rows_is_refused_by_its_ids(wage, tmp_path):
    """Without provenance.json (a copied folder), the digest of the test ids, in their order,
    that metrics.json records still tells."""
    good, noise = regression_members(wage, tmp_path)
    for run in (good, noise):
        (run / "provenance.json").unlink()
    data = _reordered_test_rows(tmp_path)
    code, _, err = blend(WAGE, good, noise, "--data-dir", data, "--out", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1, err
    assert f"run {good} predicted other test rows: its test ids, in their order, are not " in err
    assert f"those of {data}/test.csv" in err


def test_blend_without_data_dir_reads_the_folder_the_runs_read(wage, tmp_path, monkeypatch):
    """The files live apart from competition.yaml; the runs read them with --data-dir, and
    the blend finds them in the runs' provenance.json."""
    yaml_dir, files = tmp_path / "comp", tmp_path / "files"
    shutil.copytree(DATA / "wage", files, ignore=shutil.ignore_patterns("competition.yaml"))
    yaml_dir.mkdir()
    shutil.copy(DATA / "wage" / "competition.yaml", yaml_dir)
    good, noise = regression_members(wage, tmp_path, data_dir=files)
    monkeypatch.chdir(tmp_path)  # no data/wage/ here
    code, _, err = blend(yaml_dir, good, noise, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    assert err == (
        f"reading the data from {files}/, the folder run {good} read (its provenance.json); "
        "--data-dir chooses another\n"
    )
    provenance = json.loads((tmp_path / "out" / "provenance.json").read_text())
    assert provenance["data"]["dir"] == str(files)
