"""A run walks down once: the input checks make the folds, fit the first fold's preprocessing and
derive the submission format, and the fit reuses all three; the references reuse the folds'
preprocessing instead of fitting their own."""

from __future__ import annotations

import argparse

import numpy as np

from pipeline.run.fit import fit_and_write
from pipeline.run.inputs import load_inputs


def _inputs(name, data_dir, *overrides):
    ns = argparse.Namespace(
        competition=name,
        config=None,
        data_dir=data_dir,
        overrides=["train.epochs=3", "cv.folds=3", *overrides],
    )
    return load_inputs(ns)


def test_each_fold_preprocessing_is_fitted_once_in_a_whole_run(
    demo, demo_dir, tmp_path, monkeypatch
):
    made = []
    original = type(demo).make_preprocessor

    def counting(self, cfg, train):
        made.append(1)
        return original(self, cfg, train)

    monkeypatch.setattr(type(demo), "make_preprocessor", counting)
    inputs = _inputs("demo", demo_dir, "cv.references=[linear]")
    assert len(made) == 3  # the checks: one per fold
    made.clear()
    metrics = fit_and_write(inputs, tmp_path / "run", progress=False)
    assert len(made) == 0  # the checks fitted each fold's preprocessing before
    assert metrics["references"][0]["name"] == "logistic_regression"
    assert (tmp_path / "run" / "submission.csv").is_file()


def test_the_fit_trains_on_the_checked_folds_with_their_preprocessing(covid, covid_dir, tmp_path):
    inputs = _inputs("covid", covid_dir)
    metrics = fit_and_write(inputs, tmp_path / "run", progress=False)
    fold = np.loadtxt(tmp_path / "run" / "oof.csv", delimiter=",", skiprows=1, usecols=1)
    for k, (_, va) in enumerate(inputs.splits):
        assert (fold[va] == k).all()
    for pre, (tr, _) in zip(inputs.preprocessors, inputs.splits, strict=True):
        scaler = pre.features.named_steps["scale"]
        cols = pre.features.named_steps["select"].columns
        np.testing.assert_allclose(scaler.mean_, inputs.train.X[tr][:, cols].mean(0), rtol=1e-5)
    assert set(metrics["seconds"]) >= {"cv_fit", "predict_test", "compare", "write", "total"}
