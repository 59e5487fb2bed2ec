"""Per-fold preprocessing: plain standard scaling of a large array is fitted for all folds in one
pass over the rows, and gives what scikit-learn's own fit on each fold's rows gives."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from sklearn.model_selection import KFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.competition.preprocess import (
    Preprocessor,
    SelectColumns,
    fit_scaling_in_one_pass,
    fits_in_one_pass,
)
from pipeline.engine.splits import blocked_splits


def _pre(select: bool, offset: bool) -> Preprocessor:
    steps = [("select", SelectColumns([0, 2, 3]))] if select else []
    steps.append(("scale", StandardScaler()))
    return Preprocessor(Pipeline(steps), offset_column=1 if offset else None, scale_target=True)


@pytest.mark.parametrize("blocked", [True, False])
@pytest.mark.parametrize("select", [True, False])
def test_one_pass_gives_scikit_learns_fit_on_each_fold(blocked, select):
    rng = np.random.default_rng(0)
    n = 60_000
    X = (rng.normal(size=(n, 5)) * [1, 10, 100, 0, 1e-3] + [0, 5, -3, 7, 1e4]).astype(np.float32)
    y = (X[:, 1] + rng.normal(size=n)).astype(np.float32)
    splits = (blocked_splits(n, 5, gap=20, groups=np.repeat(np.arange(4), n // 4)) if blocked
              else list(KFold(5, shuffle=True, random_state=0).split(X)))  # fmt: skip
    ours = [_pre(select, offset=True) for _ in splits]
    theirs = copy.deepcopy(ours)
    assert fits_in_one_pass(ours, X)
    fit_scaling_in_one_pass(ours, X, y, splits, chunk=7_000)
    for a, b, (tr, _) in zip(ours, theirs, splits, strict=True):
        b.fit(X[tr], y[tr])
        sa, sb = a.features.named_steps["scale"], b.features.named_steps["scale"]
        assert sa.n_samples_seen_ == sb.n_samples_seen_ == len(tr)
        np.testing.assert_allclose(sa.mean_, sb.mean_, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(sa.scale_, sb.scale_, rtol=1e-7)  # a constant column: 1
        assert (a.shift_, a.scale_, a.n_features_out_) == (b.shift_, b.scale_, b.n_features_out_)
        np.testing.assert_allclose(a.transform(X[:100]), b.transform(X[:100]), rtol=1e-5,
                                   atol=1e-5)  # fmt: skip


def test_small_tables_and_other_steps_are_fitted_by_scikit_learn():
    X = np.zeros((100, 3), dtype=np.float32)
    assert not fits_in_one_pass([_pre(False, False)], X)  # small: scikit-learn's own fit
    big = np.zeros((60_000, 3), dtype=np.float32)
    assert not fits_in_one_pass([Preprocessor(Pipeline([("s", StandardScaler()),
                                                        ("t", StandardScaler())]))], big)  # fmt: skip
    assert not fits_in_one_pass([_pre(False, False)], big.astype(np.float64))
