"""A linear yardstick on the same folds and the same per-fold preprocessing as the network:
ridge regression (alpha chosen per fold by RidgeCV) or multinomial logistic regression. If the
network cannot beat it, the network is not earning its keep."""

from __future__ import annotations

import time
import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, RidgeCV

from pipeline.competition import Competition, TrainData


def baseline_scores(competition: Competition, cfg, train: TrainData, splits) -> dict:
    task, metric = competition.task, competition.metric
    name = "logistic_regression" if task.is_classification else "ridge"
    start = time.perf_counter()
    n = len(train.y)
    oof = np.zeros((n, task.n_classes) if task.is_classification else n, dtype=np.float64)
    scores = []
    for tr, va in splits:
        pre = competition.make_preprocessor(cfg, train)
        X_tr, X_va = train.X[tr], train.X[va]
        pre.fit(X_tr, train.y[tr])
        if task.is_classification:
            model = LogisticRegression(max_iter=1000)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                model.fit(pre.transform(X_tr), train.y[tr])
            pred = np.zeros((len(va), task.n_classes))
            pred[:, model.classes_] = model.predict_proba(pre.transform(X_va))
        else:
            model = RidgeCV(alphas=np.logspace(-3, 3, 13))
            model.fit(pre.transform(X_tr), pre.model_target(train.y[tr], X_tr))
            pred = pre.inverse_target(model.predict(pre.transform(X_va)), X_va)
        oof[va] = pred
        scores.append(metric(train.y[va], pred))
    covered = np.zeros(n, dtype=bool)
    for _, va in splits:
        covered[va] = True
    return {
        "name": name,
        "fold_scores": scores,
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "oof_score": metric(train.y[covered], oof[covered]),
        "seconds": round(time.perf_counter() - start, 3),
    }
