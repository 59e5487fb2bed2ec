"""The features section's scaling keys: features.clip really bounds the scaled numbers (and
keeps their order), quantile scaling fits small folds without warnings, and the target is
standardised by default."""

import warnings

import numpy as np
import pytest

from pipeline.errors import ConfigError
from pipeline.tabular.features import ColumnKinds, TabularFeatures, tabular_preprocessor


def _fit(cfg, X, kinds=None):
    pre = tabular_preprocessor(cfg, "regression", X.shape[1], kinds=kinds)
    return pre.fit(X, np.arange(len(X), dtype=np.float32))


@pytest.mark.parametrize("missing", [False, True])
def test_clip_bounds_the_scaled_numbers_and_keeps_their_order(missing):
    rng = np.random.default_rng(0)
    X = rng.standard_cauchy((500, 2)).astype(np.float32)  # heavy tails
    kinds = None
    if missing:
        X[::7, 0] = np.nan
        kinds = ColumnKinds(np.array([False, False]), [], np.array([True, False]))
    plain = _fit(TabularFeatures(scale="robust"), X, kinds).transform(X)[:, 1]
    clipped = _fit(TabularFeatures(scale="robust", clip=3.0), X, kinds).transform(X)[:, 1]
    assert np.abs(plain).max() > 10 and np.abs(clipped).max() < 3.0
    assert np.array_equal(np.argsort(plain, kind="stable"), np.argsort(clipped, kind="stable"))
    near = np.abs(plain) < 0.3  # about the identity near 0
    assert np.allclose(clipped[near], plain[near], atol=0.01)
    with pytest.raises(ConfigError, match="features.clip must be a float >= 0"):
        TabularFeatures(clip=-1.0).check()


def test_quantile_scaling_fits_a_small_fold_without_warnings():
    X = np.random.default_rng(0).normal(size=(120, 3)).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scikit-learn warns at 1000 quantiles for 120 rows
        out = _fit(TabularFeatures(scale="quantile"), X).transform(X)
    assert np.isfinite(out).all() and abs(out.mean()) < 0.1 and 0.7 < out.std() < 1.3


def test_the_target_is_standardised_by_default():
    X = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    y = np.linspace(1000, 5000, 50).astype(np.float32)
    pre = tabular_preprocessor(TabularFeatures(), "regression", 2).fit(X, y)
    z = pre.model_target(y, X)
    assert abs(z.mean()) < 1e-5 and z.std() == pytest.approx(1.0, rel=1e-4)
    assert np.allclose(pre.inverse_target(z, X), y, rtol=1e-5)
