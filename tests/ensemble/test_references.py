import functools
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, RidgeCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from pipeline.competition.base import Competition, TrainData
from pipeline.competition.preprocess import Preprocessor
from pipeline.config import build_config
from pipeline.engine.splits import make_splits
from pipeline.ensemble.references import (
    HGB_MAX_BINS,
    hgb_categorical,
    hgb_model,
    reference_names,
    reference_predictions,
)
from pipeline.errors import ConfigError
from pipeline.model.metrics import Task
from pipeline.model.registry import REFERENCES, register_reference


@pytest.fixture(autouse=True)
def one_thread():
    """HistGradientBoosting's OpenMP threads crawl on a shared, busy machine."""
    with threadpool_limits(1):
        yield


class Toy(Competition):
    """Raw columns: x0 numeric with NaN, x1 numeric, x2 category codes 0..4 with NaN, x3 a
    code column with more categories than HistGradientBoosting's bins. x1 is the offset."""

    name = "toy"

    def __init__(self, task: Task, metric: str = "rmse", offset: bool = False):
        self.task, self.metric_name, self.offset = task, metric, offset

    def make_preprocessor(self, cfg, train):
        steps = Pipeline([("impute", SimpleImputer()), ("scale", StandardScaler())])
        return Preprocessor(steps, offset_column=1 if self.offset else None, scale_target=True)


CATEGORICAL = np.array([False, False, True, True])
EFFECT = np.array([0.0, 3.0, -2.0, 4.0, -3.0])  # not monotone in the code: trees must split it


def toy_data(task: Task, n: int = 600, seed: int = 0, offset: float = 0.0) -> TrainData:
    rng = np.random.default_rng(seed)
    x0 = rng.normal(size=n)
    x1 = rng.normal(size=n) * 2 + offset
    x2 = rng.integers(0, 5, size=n).astype(np.float64)
    x3 = rng.permutation(np.arange(n) % (HGB_MAX_BINS + 45)).astype(np.float64)
    missing0, missing2 = rng.random(n) < 0.2, rng.random(n) < 0.1
    signal = x1 + EFFECT[x2.astype(int)] + 3.0 * missing0 - 2.0 * missing2
    x0[missing0], x2[missing2] = np.nan, np.nan
    X = np.column_stack([x0, x1, x2, x3]).astype(np.float32)
    if task.is_classification:
        y = np.digitize(signal, np.quantile(signal, [1 / 3, 2 / 3])).astype(np.int64)
    else:
        y = (signal + rng.normal(size=n) * 0.3).astype(np.float32)
    return TrainData(
        X=X,
        y=y,
        ids=np.arange(n),
        categorical=CATEGORICAL.copy(),
        feature_names=["x0", "x1", "x2", "x3"],
    )


def config(*overrides):
    return build_config(overrides=["cv.folds=3", "cv.references=[linear,hgb]", *overrides])


REG = Task("regression")
CLS = Task("classification", n_classes=3)


def test_hgb_takes_code_columns_with_few_categories_as_categorical():
    train = toy_data(REG)
    assert hgb_categorical(train).tolist() == [False, False, True, False]  # x3: 300 codes
    train.categorical = None
    assert hgb_categorical(train) is None
    model = hgb_model(REG, np.array([False, False, True, False]), seed=0)
    model.fit(toy_data(REG).X, toy_data(REG).y)
    assert model.is_categorical_.tolist() == [False, False, True, False]


@pytest.mark.parametrize("task, metric", [(REG, "rmse"), (CLS, "accuracy")])
def test_references_predict_every_validated_row_on_nan_and_codes(task, metric):
    competition, train, cfg = Toy(task, metric), toy_data(task), config()
    splits = make_splits(cfg.cv, train, cfg.seed, task.is_classification)
    test_X = toy_data(task, n=50, seed=1).X
    test_X[:5, 2] = 5  # a category only the test rows hold (codes come from train and test)
    linear, hgb = reference_predictions(competition, cfg, train, splits, test_X)
    assert (linear.key, hgb.key, hgb.name) == ("linear", "hgb", "hist_gradient_boosting")
    shape = (600, 3) if task.is_classification else (600,)
    for ref in (linear, hgb):
        assert ref.oof.shape == shape and np.isfinite(ref.oof).all()
        assert ref.test.shape == (50, *shape[1:]) and np.isfinite(ref.test).all()
        assert len(ref.fold_scores) == 3
        assert ref.oof_score == pytest.approx(competition.metric(train.y, ref.oof))
        if task.is_classification:
            assert np.allclose(ref.oof.sum(axis=1), 1) and np.allclose(ref.test.sum(axis=1), 1)
    # the category effects and the missingness are not linear in the raw columns: trees win
    if task.is_classification:
        assert hgb.oof_score > linear.oof_score + 0.05
    else:
        assert hgb.oof_score < 0.6 * linear.oof_score


def test_test_predictions_average_the_fold_models():
    competition, train, cfg = Toy(REG), toy_data(REG, n=300), config("cv.references=[hgb]")
    splits = make_splits(cfg.cv, train, cfg.seed, False)
    test_X = train.X[:40]
    (three,) = reference_predictions(competition, cfg, train, splits, test_X)
    single = [reference_predictions(competition, cfg, train, [s], test_X)[0].test for s in splits]
    assert np.allclose(three.test, np.mean(single, axis=0))


def test_regression_references_learn_the_model_target_and_map_back():
    """The target is the offset column plus a small effect: both references learn the rest
    (standardised) and must add the offset back to score on the competition's scale."""
    competition, train = Toy(REG, offset=True), toy_data(REG, offset=1000.0)
    cfg = config()
    splits = make_splits(cfg.cv, train, cfg.seed, False)
    for ref in reference_predictions(competition, cfg, train, splits, train.X[:10]):
        assert ref.oof_score < 0.9 * train.y.std(), ref.name  # y is about 1000 +- 3.5
        assert abs(ref.oof.mean() - train.y.mean()) < 0.5, ref.name
        assert np.allclose(ref.test, train.y[:10], atol=10)


def test_a_fold_missing_a_class_still_gives_class_k_in_column_k():
    competition, train, cfg = Toy(CLS, "accuracy"), toy_data(CLS), config()
    rows = np.arange(600)
    no_class_2 = rows[train.y != 2]
    splits = [(no_class_2[:300], rows[300:]), (rows[300:], rows[:300])]
    linear, hgb = reference_predictions(competition, cfg, train, splits)
    for ref in (linear, hgb):
        assert ref.oof.shape == (600, 3) and ref.test is None
        first_fold = ref.oof[300:]
        assert (first_fold[:, 2] == 0).all() and np.allclose(first_fold.sum(axis=1), 1)


def test_rows_no_fold_validates_stay_nan_and_are_not_scored():
    competition, train, cfg = Toy(REG), toy_data(REG, n=300), config("cv.references=[linear]")
    rows = np.arange(300)
    splits = [(rows[100:200], rows[:100]), (rows[:100], rows[100:200])]  # 200.. never validated
    (linear,) = reference_predictions(competition, cfg, train, splits)
    assert np.isfinite(linear.oof[:200]).all() and np.isnan(linear.oof[200:]).all()
    assert linear.oof_score == pytest.approx(competition.metric(train.y[:200], linear.oof[:200]))


def _old_baseline_fold_scores(competition, cfg, train, splits):
    """pipeline/baseline.py before the references: the numbers must not move."""
    scores = []
    for tr, va in splits:
        pre = competition.make_preprocessor(cfg, train).fit(train.X[tr], train.y[tr])
        if competition.task.is_classification:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model = LogisticRegression(max_iter=1000).fit(
                    pre.transform(train.X[tr]), train.y[tr]
                )
            pred = np.zeros((len(va), competition.task.n_classes))
            pred[:, model.classes_] = model.predict_proba(pre.transform(train.X[va]))
        else:
            model = RidgeCV(alphas=np.logspace(-3, 3, 13))
            model.fit(pre.transform(train.X[tr]), pre.model_target(train.y[tr], train.X[tr]))
            pred = pre.inverse_target(model.predict(pre.transform(train.X[va])), train.X[va])
        scores.append(competition.metric(train.y[va], pred))
    return scores


@pytest.mark.parametrize("task, metric", [(REG, "rmse"), (CLS, "accuracy")])
def test_the_linear_summary_keeps_its_keys_and_numbers(task, metric):
    competition, train, cfg = Toy(task, metric, offset=True), toy_data(task), config()
    splits = make_splits(cfg.cv, train, cfg.seed, task.is_classification)
    (linear,) = reference_predictions(competition, cfg, train, splits, names=["linear"])
    result = linear.summary()
    assert set(result) == {"name", "fold_scores", "mean", "std", "oof_score", "seconds"}
    assert result["name"] == ("logistic_regression" if task.is_classification else "ridge")
    assert result["fold_scores"] == _old_baseline_fold_scores(competition, cfg, train, splits)


def test_cv_references_choose_and_cv_baseline_turns_them_all_off():
    assert reference_names(build_config()) == ["linear"]  # CSV competitions add hgb
    assert reference_names(config()) == ["linear", "hgb"]
    assert reference_names(config("cv.references=[HGB]")) == ["hgb"]
    assert reference_names(config("cv.references=[]")) == []
    assert reference_names(config("cv.baseline=false")) == []
    with pytest.raises(ConfigError, match="cv.references must be a list of .*linear, hgb"):
        config("cv.references=[xgboost]")
    with pytest.raises(ConfigError, match="cv.references must be a list without repeats"):
        config("cv.references=[linear, linear]")


def test_a_registered_reference_is_a_valid_name_and_runs():
    def fit_mean(fold):
        mean = float(np.mean(fold.train.y[fold.tr]))
        return np.full(len(fold.va), mean), None

    register_reference("train_mean", fit_mean, title="mean of the training fold")
    try:
        cfg = config("cv.references=[train_mean]")
        train = toy_data(REG, n=90)
        (ref,) = reference_predictions(Toy(REG), cfg, train, [(np.arange(45), np.arange(45, 90))])
        assert ref.name == "mean of the training fold" and ref.seconds >= 0
        assert np.allclose(ref.oof[45:], train.y[:45].mean())
    finally:
        REFERENCES.unregister("train_mean")


def test_lightgbm_takes_nan_and_codes_natively_and_stops_on_the_validation_rows():
    competition, train = Toy(CLS, "logloss"), toy_data(CLS)
    cfg = config("cv.references=[lightgbm, linear]")
    splits = make_splits(cfg.cv, train, cfg.seed, True)
    test_X = toy_data(CLS, n=50, seed=1).X
    lgbm, linear = reference_predictions(competition, cfg, train, splits, test_X)
    assert (lgbm.key, lgbm.name) == ("lightgbm", "lightgbm")
    assert np.isfinite(lgbm.oof).all() and np.allclose(lgbm.oof.sum(axis=1), 1)
    assert lgbm.test.shape == (50, 3) and np.isfinite(lgbm.test).all()
    assert lgbm.oof_score < linear.oof_score - 0.1  # categories and missingness: trees win


def test_lightgbm_fits_the_metrics_objective_and_the_best_round():
    """mae trains LightGBM's l1 objective (the median), rmse its l2 (the mean), and early
    stopping on the validation rows ends long before the round cap."""
    from pipeline.ensemble.references import LIGHTGBM_PARAMS, ReferenceFold, fit_lightgbm

    seen = {}
    import lightgbm as lgb

    original = lgb.LGBMRegressor.fit

    @functools.wraps(original)  # the same signature: the reference reads it
    def spy(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        seen[self.objective] = self.best_iteration_
        return out

    lgb.LGBMRegressor.fit = spy
    try:
        for metric in ("mae", "rmse"):
            competition, train, cfg = Toy(REG, metric), toy_data(REG), config()
            rows = np.arange(600)
            fold = ReferenceFold(0, rows[:400], rows[400:], competition, cfg, train)
            pred, _ = fit_lightgbm(fold)
            assert pred.shape == (200,) and np.isfinite(pred).all()
    finally:
        lgb.LGBMRegressor.fit = original
    assert set(seen) == {"regression_l1", "regression"}
    assert all(0 < best < LIGHTGBM_PARAMS["n_estimators"] for best in seen.values())


@pytest.mark.parametrize("task, metric", [(CLS, "logloss"), (REG, "rmse"), (REG, "mae")])
def test_hgb_is_at_least_as_strong_as_scikit_learns_defaults(task, metric):
    """The same folds, scikit-learn's HistGradientBoosting with its defaults: the reference
    (early stopping on the fold's validation rows, enough rounds) scores no worse."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    competition, train, cfg = Toy(task, metric), toy_data(task, n=900), config()
    splits = make_splits(cfg.cv, train, cfg.seed, task.is_classification)
    (hgb,) = reference_predictions(competition, cfg, train, splits, names=["hgb"])
    mask = hgb_categorical(train)
    oof = np.zeros_like(hgb.oof)
    for k, (tr, va) in enumerate(splits):
        if task.is_classification:
            model = HistGradientBoostingClassifier(categorical_features=mask, random_state=k)
            oof[va] = model.fit(train.X[tr], train.y[tr]).predict_proba(train.X[va])
        else:
            loss = "absolute_error" if metric == "mae" else "squared_error"
            model = HistGradientBoostingRegressor(
                loss=loss, categorical_features=mask, random_state=k
            )
            oof[va] = model.fit(train.X[tr], train.y[tr]).predict(train.X[va])
    default = competition.metric(train.y, oof)
    assert not competition.metric.greater_is_better
    assert hgb.oof_score <= default * 1.01, (hgb.oof_score, default)
