"""The linear yardstick as metrics.json has always held it (pipeline.ensemble.references has the
others): ridge regression (alpha chosen per fold by RidgeCV) or multinomial logistic regression
on the same folds and per-fold preprocessing as the network. If the network cannot beat it,
the network is not earning its keep."""

from __future__ import annotations

from pipeline.competition.base import Competition, TrainData
from pipeline.ensemble.references import reference_predictions


def baseline_scores(competition: Competition, cfg, train: TrainData, splits) -> dict:
    """name, fold_scores, mean, std, oof_score and seconds of the linear reference."""
    (linear,) = reference_predictions(competition, cfg, train, splits, names=["linear"])
    return linear.summary()
