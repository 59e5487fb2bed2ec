"""Same-folds references: models a Kaggler compares a network with, fitted on exactly the
network's folds, each returning its out-of-fold and (fold-averaged) test predictions in the
prediction space (values, or probabilities (n, K) with class k in column k), so they can be
scored side by side and blended with it (pipeline.ensemble.weights).

- linear: ridge (alpha chosen per fold by RidgeCV) or multinomial logistic regression on the
  fold's own preprocessing, as the network sees the columns;
- hgb: scikit-learn's HistGradientBoosting on the raw columns (NaN handled natively, category
  code columns as native categoricals), early stopping on the fold's validation rows;
- lightgbm: LightGBM on the raw columns (NaN and categories native), the metric's objective,
  early stopping on the fold's validation rows: the number a Kaggler expects to beat.

The boosters stop on the fold's validation rows, as the network's early stopping does: the
number of rounds is chosen on the rows the fold is scored on, the same (small) optimism for
every model of the run, so the out-of-fold scores stay comparable.

REFERENCES (pipeline.model.registry) is open: `register_reference("mine", fit, title="mine")` with
`fit(fold: ReferenceFold) -> (validation predictions, test predictions or None)` makes
`cv.references=[linear, mine]` valid.
"""

from __future__ import annotations

import dataclasses
import inspect
import time
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV
from threadpoolctl import threadpool_limits

from pipeline.config.sections import LightGBMConfig
from pipeline.model.registry import REFERENCES, register_reference

if TYPE_CHECKING:  # the config checks cv.references against this module's registrations
    from pipeline.competition.base import Competition, TrainData
    from pipeline.competition.preprocess import Preprocessor

HGB_MAX_BINS = 255  # scikit-learn's most: a code column with more categories reads as numeric


@dataclass
class Reference:
    """One reference's scores on the folds, and its predictions."""

    key: str  # its REFERENCES name (cv.references): linear, hgb
    name: str  # what the summary calls it: ridge, logistic_regression, hist_gradient_boosting
    fold_scores: list[float]
    mean: float
    std: float
    oof_score: float  # on the rows some fold validated
    oof: np.ndarray  # (n,) or (n, K) float64; NaN on rows no fold validated
    test: np.ndarray | None  # fold-averaged test predictions; None without test rows
    seconds: float

    def summary(self) -> dict:
        """The metrics.json entry (the same keys as the linear baseline has always had)."""
        return {
            "name": self.name,
            "fold_scores": self.fold_scores,
            "mean": self.mean,
            "std": self.std,
            "oof_score": self.oof_score,
            "seconds": self.seconds,
        }


@dataclass
class ReferenceFold:
    """What a reference fits on: fold k's training and validation rows, the test rows, and
    the fold's preprocessing, fitted on the training rows when first asked for (and shared by
    the references of the fold)."""

    k: int
    tr: np.ndarray
    va: np.ndarray
    competition: Competition
    cfg: Any
    train: TrainData
    test_X: np.ndarray | None = None
    shared: dict = field(default_factory=dict)  # one run's cache, the same for every fold
    fitted: Preprocessor | None = field(default=None, repr=False)  # the run's, when given

    @property
    def seed(self) -> int:
        return self.cfg.seed + self.k

    def preprocessor(self) -> Preprocessor:
        if self.fitted is None:
            pre = self.competition.make_preprocessor(self.cfg, self.train)
            self.fitted = pre.fit(self.train.X[self.tr], self.train.y[self.tr])
        return self.fitted


def reference_names(cfg) -> list[str]:
    """The references a run scores: cv.references, none when cv.baseline is false."""
    return list(cfg.cv.references) if cfg.cv.baseline else []


def reference_title(name: str, task) -> str:
    """What summaries and metrics.json call the reference registered as `name` for `task`:
    ridge or logistic_regression for linear, its registered title, else its name."""
    title = REFERENCES.info(name)["title"]
    return title(task) if callable(title) else (title or name)


def reference_predictions(
    competition: Competition,
    cfg,
    train: TrainData,
    splits,
    test_X: np.ndarray | None = None,
    names: list[str] | None = None,
    preprocessors: list[Preprocessor] | None = None,
) -> list[Reference]:
    """Fit each reference (default: reference_names(cfg)) on every fold of `splits`.
    `preprocessors`: each fold's preprocessing, fitted by the run (the network's own); fitted
    here on each fold's training rows when None."""
    names = reference_names(cfg) if names is None else [REFERENCES.canonical(n) for n in names]
    task, metric = competition.task, competition.metric
    n = len(train.y)
    shape = (n, task.n_classes) if task.is_classification else (n,)
    oof = {name: np.full(shape, np.nan) for name in names}
    test = {name: [] for name in names}
    scores = {name: [] for name in names}
    seconds = dict.fromkeys(names, 0.0)
    covered = np.zeros(n, dtype=bool)
    shared: dict = {}
    for k, (tr, va) in enumerate(splits):
        fitted = preprocessors[k] if preprocessors is not None else None
        fold = ReferenceFold(k, tr, va, competition, cfg, train, test_X, shared, fitted)
        covered[va] = True
        for name in names:
            start = time.perf_counter()
            pred, pred_test = REFERENCES.lookup(name)(fold)
            seconds[name] += time.perf_counter() - start
            oof[name][va] = pred
            scores[name].append(metric(train.y[va], pred))
            if pred_test is not None:
                test[name].append(pred_test)
    refs = []
    for name in names:
        refs.append(
            Reference(
                key=name,
                name=reference_title(name, task),
                fold_scores=scores[name],
                mean=float(np.mean(scores[name])),
                std=float(np.std(scores[name])),
                oof_score=metric(train.y[covered], oof[name][covered]),
                oof=oof[name],
                test=np.mean(test[name], axis=0) if test[name] else None,
                seconds=round(seconds[name], 3),
            )
        )
    return refs


def _class_columns(proba: np.ndarray, classes: np.ndarray, n_classes: int) -> np.ndarray:
    """predict_proba's columns (the fold's classes) placed in class-number columns."""
    out = np.zeros((len(proba), n_classes))
    out[:, classes] = proba
    return out


def fit_linear(fold: ReferenceFold) -> tuple[np.ndarray, np.ndarray | None]:
    """Ridge / logistic regression on the fold's preprocessing (without the category codes
    a network embeds: codes are no linear feature)."""
    task, train = fold.competition.task, fold.train
    pre = fold.preprocessor()
    X_tr, X_va = train.X[fold.tr], train.X[fold.va]
    X_te = fold.test_X
    codes = len(pre.embed)

    def features(X):
        out = pre.transform(X)
        return out[:, : out.shape[1] - codes]

    if task.is_classification:
        model = LogisticRegression(max_iter=1000)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.fit(features(X_tr), train.y[fold.tr])

        def predict(X):
            return _class_columns(model.predict_proba(features(X)), model.classes_, task.n_classes)
    else:
        model = RidgeCV(alphas=np.logspace(-3, 3, 13))
        model.fit(features(X_tr), pre.model_target(train.y[fold.tr], X_tr))

        def predict(X):
            return pre.inverse_target(model.predict(features(X)), X)

    return predict(X_va), (None if X_te is None else predict(X_te))


def hgb_categorical(train: TrainData, max_bins: int = HGB_MAX_BINS) -> np.ndarray | None:
    """The code columns HistGradientBoosting takes as categorical: those with at most
    max_bins distinct codes in train (more would be refused by it); the rest read as numbers."""
    if train.categorical is None or not np.any(train.categorical):
        return None
    mask = np.asarray(train.categorical, dtype=bool).copy()
    for j in np.flatnonzero(mask):
        column = np.asarray(train.X[:, j], dtype=np.float64)
        if len(np.unique(column[~np.isnan(column)])) > max_bins:
            mask[j] = False
    return mask if mask.any() else None


def _known_classes(y_tr: np.ndarray, y_va: np.ndarray) -> np.ndarray:
    """The validation rows whose class the training rows hold: what early stopping can score
    (a class a fold never trains on has no column in the boosters' predictions)."""
    return np.isin(y_va, np.unique(y_tr))


def regression_objective(fold: ReferenceFold) -> str:
    """The loss the boosters fit for a regression: the network's, fitted to the metric
    (pipeline.model.metrics.loss_for: l1 for mae and medae, else squared error; rmsle's
    target is log1p(y) already)."""
    from pipeline.model.metrics import loss_for

    return loss_for(fold.competition.metric, fold.competition.task, fold.cfg.train.loss)


HGB_LOSS = {"mse": "squared_error", "l1": "absolute_error", "huber": "squared_error"}


def hgb_model(task, categorical: np.ndarray | None, seed: int, loss: str = "mse"):
    """scikit-learn's learning rate (0.1) with up to 1000 rounds, stopped 20 rounds after the
    validation loss last improved on the fold's validation rows: at least as strong as
    scikit-learn's defaults (100 rounds, early stopping only above 10,000 rows, on an
    internal 10% split), whose fixed rounds overfit small folds' probabilities."""
    settings = dict(
        learning_rate=0.1,
        max_iter=1000,
        max_bins=HGB_MAX_BINS,
        categorical_features=categorical,
        early_stopping=True,
        n_iter_no_change=20,
        random_state=seed,
    )
    if task.is_classification:
        return HistGradientBoostingClassifier(**settings)
    return HistGradientBoostingRegressor(loss=HGB_LOSS[loss], **settings)


def _hgb_validation(model, X: np.ndarray, y: np.ndarray) -> dict:
    """The fold's validation rows for HistGradientBoosting's early stopping (X_val, y_val:
    scikit-learn 1.7 and later); older releases stop on an internal 10% split instead."""
    if "X_val" in inspect.signature(model.fit).parameters:
        return {"X_val": X, "y_val": y}
    return {}


HGB_ONE_THREAD_ROWS = 50_000  # smaller folds fit on one thread (see fit_hgb)


def fit_hgb(fold: ReferenceFold) -> tuple[np.ndarray, np.ndarray | None]:
    """HistGradientBoosting on the raw columns; regression learns the preprocessing's model
    target (an offset column taken off) and maps back. Folds under HGB_ONE_THREAD_ROWS rows
    use one OpenMP thread: on small data the threads' start-up and spin-waiting cost more
    than they save, many times more on a busy machine (measured 10x on 2 shared cores)."""
    threads = 1 if len(fold.tr) < HGB_ONE_THREAD_ROWS else None
    with threadpool_limits(limits=threads, user_api="openmp"):
        return _fit_hgb(fold)


def _fit_hgb(fold: ReferenceFold) -> tuple[np.ndarray, np.ndarray | None]:
    task, train = fold.competition.task, fold.train
    X_tr = np.asarray(train.X[fold.tr], dtype=np.float32)
    X_va = np.asarray(train.X[fold.va], dtype=np.float32)
    X_te = None if fold.test_X is None else np.asarray(fold.test_X, dtype=np.float32)
    if "hgb_categorical" not in fold.shared:
        fold.shared["hgb_categorical"] = hgb_categorical(train)
    loss = "mse" if task.is_classification else regression_objective(fold)
    model = hgb_model(task, fold.shared["hgb_categorical"], fold.seed, loss)
    # a column empty in every training row breaks scikit-learn's binning ("window shape cannot
    # be larger than input array shape"); as a constant it is never split on, as it carries nothing
    empty = [j for j in np.flatnonzero(np.isnan(X_tr[0])) if np.isnan(X_tr[:, j]).all()]
    X_fit, X_val = X_tr, X_va
    if empty:
        X_fit, X_val = X_tr.copy(), X_va.copy()
        X_fit[:, empty] = X_val[:, empty] = 0.0
    predict = _fit_booster(
        fold,
        X_tr,
        X_va,
        lambda y, X_v, y_v: model.fit(X_fit, y, **_hgb_validation(model, X_v, y_v)),
        model,
        X_val,
    )
    return predict(X_va), (None if X_te is None else predict(X_te))


def _fit_booster(fold: ReferenceFold, X_tr, X_va, fit, model, X_val=None):
    """Fit a booster on the fold's training rows, early-stopped on its validation rows (`fit(y,
    X_val, y_val)`): classes as they are, with validation rows of classes the training rows
    lack left out; a regression target as the preprocessing's model target, mapped back.
    Returns the fitted predict of raw rows (class columns, or values)."""
    task, train = fold.competition.task, fold.train
    X_val = X_va if X_val is None else X_val
    y_tr, y_va = train.y[fold.tr], train.y[fold.va]
    if task.is_classification:
        known = _known_classes(y_tr, y_va)
        fit(y_tr, X_val[known], y_va[known])
        return lambda X: _class_columns(model.predict_proba(X), model.classes_, task.n_classes)
    pre = fold.preprocessor()
    fit(pre.model_target(y_tr, X_tr), X_val, pre.model_target(y_va, X_va))
    return lambda X: pre.inverse_target(np.asarray(model.predict(X), dtype=np.float64), X)


def lightgbm_params(settings: LightGBMConfig) -> dict:
    """The estimator's keyword arguments of the config's `lightgbm` section (but `stopping`)."""
    params = dataclasses.asdict(settings)
    del params["stopping"]
    return {**params, "subsample_freq": 1}  # bagging every round, as subsample asks


LIGHTGBM_PARAMS = lightgbm_params(LightGBMConfig())  # the defaults (docs, tests)
LIGHTGBM_OBJECTIVE = {"mse": "regression", "l1": "regression_l1", "huber": "huber"}


def lightgbm_model(task, seed: int, threads: int, objective: str = "mse", **params):
    """LightGBM's scikit-learn estimator with LIGHTGBM_PARAMS (overridden by `params`, such
    as the run's `lightgbm` section); the
    regression objective is the network's loss (`objective`), classification LightGBM's
    binary or multiclass log loss."""
    import lightgbm as lgb

    options = {
        **LIGHTGBM_PARAMS,
        **params,
        "random_state": seed,
        "n_jobs": threads,
        "deterministic": True,
        "force_row_wise": True,  # deterministic, and no timing probe message
        "verbose": -1,
    }
    if task.is_classification:
        return lgb.LGBMClassifier(**options)
    return lgb.LGBMRegressor(objective=LIGHTGBM_OBJECTIVE[objective], **options)


def _validation(model, X: np.ndarray, y: np.ndarray) -> dict:
    """LightGBM's fit arguments for the validation rows: eval_X / eval_y from 4.7 on (where
    eval_set is deprecated), eval_set before."""
    if "eval_X" in inspect.signature(model.fit).parameters:
        return {"eval_X": (X,), "eval_y": (y,)}
    return {"eval_set": [(X, y)]}


def fit_lightgbm(fold: ReferenceFold) -> tuple[np.ndarray, np.ndarray | None]:
    """LightGBM on the raw columns: NaN as missing, category code columns as its native
    categoricals; rounds chosen by early stopping on the fold's validation rows (the best
    round predicts). Regression learns the preprocessing's model target, as hgb does."""
    import lightgbm as lgb

    task, train = fold.competition.task, fold.train
    X_tr = np.asarray(train.X[fold.tr], dtype=np.float32)
    X_va = np.asarray(train.X[fold.va], dtype=np.float32)
    X_te = None if fold.test_X is None else np.asarray(fold.test_X, dtype=np.float32)
    mask = train.categorical
    categorical = [] if mask is None else np.flatnonzero(mask).tolist()
    threads = 1 if len(fold.tr) < HGB_ONE_THREAD_ROWS else 0  # as fit_hgb, for the same reason
    objective = "mse" if task.is_classification else regression_objective(fold)
    settings = getattr(fold.cfg, "lightgbm", None) or LightGBMConfig()
    model = lightgbm_model(task, fold.seed, threads, objective, **lightgbm_params(settings))
    stop = [lgb.early_stopping(settings.stopping, first_metric_only=True, verbose=False)]
    predict = _fit_booster(
        fold,
        X_tr,
        X_va,
        lambda y, X_v, y_v: model.fit(
            X_tr,
            y,
            **_validation(model, X_v, y_v),
            categorical_feature=categorical,
            callbacks=stop,
        ),
        model,
    )
    return predict(X_va), (None if X_te is None else predict(X_te))


register_reference(
    "linear",
    fit_linear,
    title=lambda task: "logistic_regression" if task.is_classification else "ridge",
)
register_reference("hgb", fit_hgb, title="hist_gradient_boosting")
register_reference("lightgbm", fit_lightgbm, title="lightgbm")
