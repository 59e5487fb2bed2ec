import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pipeline.competition.base import TrainData
from pipeline.competition.preprocess import Preprocessor
from pipeline.engine.cv import CrossValidator
from pipeline.engine.splits import blocked_splits, make_splits
from pipeline.errors import ConfigError
from tests.conftest import small_config


def test_blocked_splits_are_contiguous_within_groups_with_a_gap():
    groups = np.repeat([3, 1, 2], [20, 23, 17])  # unsorted group labels, uneven sizes
    splits = blocked_splits(len(groups), folds=4, gap=2, groups=groups)
    seen = np.concatenate([va for _, va in splits])
    assert np.array_equal(np.sort(seen), np.arange(len(groups)))  # each row validated once
    for tr, va in splits:
        assert not set(tr) & set(va)
        for g in np.unique(groups):
            rows = np.flatnonzero(groups == g)
            block = np.intersect1d(va, rows)
            assert np.array_equal(block, np.arange(block[0], block[-1] + 1))  # one contiguous run
            near = set(range(block[0] - 2, block[-1] + 3)) & set(rows)
            assert not near & set(tr)  # the gap is purged from training
            far = set(rows) - near
            assert far <= set(tr)  # and everything else trains


def test_blocked_splits_refuse_more_folds_than_rows_in_a_group():
    with pytest.raises(ConfigError, match="more than the 3 rows of group"):
        blocked_splits(8, folds=4, groups=np.repeat([0, 1], [5, 3]))


def _train(n=40, classes=False, groups=None):
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, n) if classes else rng.normal(size=n).astype(np.float32)
    return TrainData(
        X=rng.normal(size=(n, 3)).astype(np.float32), y=y, ids=np.arange(n), groups=groups
    )


@pytest.mark.parametrize(
    ("cv", "train", "classification", "message"),
    [
        ({"strategy": "stratified"}, _train(), False, "stratified needs a classification task"),
        ({"strategy": "group"}, _train(), False, "group needs a competition that defines"),
        (
            {"strategy": "kfold", "gap": 2},
            _train(),
            False,
            "cv.gap applies to cv.strategy=blocked",
        ),
        ({"strategy": "kfold", "folds": 50}, _train(), False, "more than the 40 training rows"),
        (
            {"strategy": "stratified", "folds": 50},
            _train(classes=True),
            True,
            "cv.folds=50 is more than the 40 training rows",
        ),
        (
            {"strategy": "group", "folds": 5},
            _train(groups=np.arange(40) % 3),
            False,
            "more than the 3 groups",
        ),
    ],
)
def test_make_splits_rejects_impossible_requests(cv, train, classification, message):
    from pipeline.config import CVConfig

    with pytest.raises(ConfigError, match=message):
        make_splits(CVConfig(**cv), train, seed=0, classification=classification)


def test_kfold_splits_depend_on_the_seed_only():
    from pipeline.config import CVConfig

    a = make_splits(CVConfig(strategy="kfold"), _train(), 1, False)
    b = make_splits(CVConfig(strategy="kfold"), _train(), 1, False)
    c = make_splits(CVConfig(strategy="kfold"), _train(), 2, False)
    assert all(np.array_equal(x[1], y[1]) for x, y in zip(a, b))
    assert not all(np.array_equal(x[1], y[1]) for x, y in zip(a, c))


def test_shuffled_folds_flatter_a_model_on_the_real_covid_file(covid, covid_dir):
    """Neighbouring windows share two of their three days, so a model that matches a row to
    its neighbours looks excellent under shuffled folds and poor under honest blocked ones."""
    train = covid.load_train(covid_dir)
    cfg = small_config(covid)

    def knn_rmse(strategy, gap):
        cfg.cv.strategy, cfg.cv.gap = strategy, gap
        errors = []
        for tr, va in make_splits(cfg.cv, train, seed=0, classification=False):
            model = make_pipeline(StandardScaler(), KNeighborsRegressor(3))
            model.fit(train.X[tr][:, 40:], train.y[tr])
            errors.append(
                np.sqrt(np.mean((model.predict(train.X[va][:, 40:]) - train.y[va]) ** 2))
            )
        return float(np.mean(errors))

    shuffled, blocked = knn_rmse("kfold", 0), knn_rmse("blocked", 2)
    assert shuffled < 1.1
    assert blocked > 2 * shuffled


class SpyPreprocessor(Preprocessor):
    fitted_on: list = []

    def fit(self, X, y):
        SpyPreprocessor.fitted_on.append(X[:, -1].copy())  # the last column holds the row id
        return super().fit(X, y)


def test_preprocessing_is_fitted_on_each_training_fold_only(demo, demo_dir, monkeypatch):
    train = demo.load_train(demo_dir)
    train.X = np.column_stack([train.X, np.arange(len(train.y))]).astype(np.float32)
    SpyPreprocessor.fitted_on = []
    base = demo.make_preprocessor

    def spy(cfg, data):
        inner = base(cfg, data)
        return SpyPreprocessor(inner.features)

    monkeypatch.setattr(demo, "make_preprocessor", spy)
    cfg = small_config(demo, "train.epochs=1", "cv.folds=3")
    cv = CrossValidator(demo, cfg, progress=False).fit(train)
    assert len(SpyPreprocessor.fitted_on) == 3
    for seen, (tr, va), fold in zip(SpyPreprocessor.fitted_on, cv.splits_, cv.folds_):
        assert np.array_equal(np.sort(seen), np.sort(tr))
        assert not set(seen.astype(int)) & set(va)
        scaler = fold.preprocessor.features.named_steps["scale"]
        np.testing.assert_allclose(scaler.mean_, train.X[tr].mean(axis=0), rtol=1e-5, atol=1e-5)


def test_same_seed_gives_identical_oof_and_another_seed_does_not(covid, covid_dir):
    train = covid.load_train(covid_dir)
    runs = [
        CrossValidator(covid, small_config(covid, f"seed={s}"), progress=False).fit(train)
        for s in (3, 3, 4)
    ]
    assert np.array_equal(runs[0].oof_, runs[1].oof_)
    assert runs[0].fold_scores_ == runs[1].fold_scores_
    assert not np.array_equal(runs[0].oof_, runs[2].oof_)


def test_restores_the_best_epoch_and_predict_averages_folds(covid, covid_dir, tmp_path):
    train, test = covid.load_train(covid_dir), covid.load_test(covid_dir)
    cfg = small_config(
        covid, "train.epochs=12", "train.patience=3", "optim.lr=0.01", "train.engine=plain"
    )
    cv = CrossValidator(covid, cfg, run_dir=tmp_path, progress=False).fit(train)
    for k, score in enumerate(cv.fold_scores_):
        log = pd.read_csv(tmp_path / "logs" / f"fold{k}" / "metrics.csv")
        val = log["val/rmse"].dropna().to_numpy()
        assert score == pytest.approx(val.min(), rel=1e-5)  # the best epoch, not the last
        assert cv.best_epochs_[k] == int(np.argmin(val))
    # OOF rows come from the fold that held them out
    for k, (_, va) in enumerate(cv.splits_):
        assert (cv.fold_of_row_[va] == k).all()
    # test predictions are the plain mean of the fold models
    pred, _ = cv.predict(test.X)
    each = [f.module.predict_array(*_inputs(f.preprocessor, test.X))[0] for f in cv.folds_]
    np.testing.assert_allclose(pred, np.mean(each, axis=0), rtol=1e-6)


def _inputs(pre, X):
    import torch

    return torch.from_numpy(pre.transform(X)), torch.from_numpy(pre.offset(X))
