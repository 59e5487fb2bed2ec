"""The CrossValidator hooks of one trial: report each validation epoch and each fold to Optuna,
and stop the run (optuna.TrialPruned) when the pruner says so. Which steps a trial reports on,
for each pruner and engine, is described in pipeline/tune/pruners.py.

Epoch values are the quantity early stopping watches (train.monitor), which need not be the
competition's metric: with auc (maximised) and train.monitor=auto it is the validation logloss
(minimised). The pruner reads intermediate values in the study's direction, so a quantity of
the opposite direction is reported negated (-logloss: larger is better, like auc); otherwise a
pruner would keep the worst trials and prune the best. The trial's `reports` attribute names
what was reported ("-val/logloss") whenever it is not the metric itself, and the pruners
compare a trial only with trials that reported the same quantity. Fold scores (the fold rule,
wilcoxon's per-fold values) are always the competition's metric.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import optuna

from pipeline.model.metrics import Metric
from pipeline.tune.pruners import (
    FOLD_MEAN,
    FOLD_SCORES,
    Pruning,
    fold_rule,
    layout_of,
    step_of,
    where,
)


class Reporter:
    """`epoch` is CrossValidator's on_epoch_end, `fold` its on_fold_end."""

    def __init__(
        self,
        trial: optuna.Trial,
        pruning: Pruning,
        stride: int,
        folds: int,
        on_epoch: Callable[[int, int | None, int], None] | None = None,
        watched: tuple[Metric, Metric] | None = None,
    ):
        self.trial, self.pruning, self.stride, self.folds = trial, pruning, stride, folds
        self.on_epoch = on_epoch  # (trial, fold, epoch): the progress bar
        # watched: (the quantity the epochs report, the competition's metric)
        self.sign, self.reports = reported(*watched) if watched else (1.0, None)
        self.scores: list[float] = []
        self.layout = ""  # PER_FOLD, FOLD_SCORES, or FOLD_MEAN when the folds train together

    def epoch(self, fold: int | None, epoch: int, value: float) -> None:
        if not self.layout:
            self.layout = layout_of(self.pruning.kind, fold)
            self.trial.set_user_attr("steps", self.layout)
            if self.reports is not None and self.layout != FOLD_SCORES:
                self.trial.set_user_attr("reports", self.reports)
        if self.on_epoch is not None:
            self.on_epoch(self.trial.number, fold, epoch)
        if not math.isfinite(value):
            return  # the fold stops there; a fold with no finite epoch raises TrainingDiverged
        if self.layout == FOLD_SCORES:
            return  # wilcoxon pairs whole folds: the fold's score is reported when it ends
        step = step_of(fold, epoch, self.stride)
        value = self.sign * value  # in the study's direction (see the module docstring)
        self.trial.report(value, step)
        self._check(f"{where(fold, epoch)} (step {step}, value {value:.4g})")

    def fold(self, fold: int, score: float) -> None:
        self.scores.append(float(score))
        if self.pruning.kind == "none" or self.layout == FOLD_MEAN:
            return  # folds that trained together all end at once: nothing left to save
        if self.layout == FOLD_SCORES:
            if math.isfinite(score):
                self.trial.report(float(score), fold)
            if len(self.scores) < self.folds:  # after the last fold there is nothing to save
                self._check(f"fold {fold + 1} (score {score:.4g})")
            return
        p = self.pruning
        reason = fold_rule(self.trial.study, self.scores, self.folds, p.n_startup, p.percentile)
        if reason:
            raise optuna.TrialPruned(reason)

    def _check(self, at: str) -> None:
        if self.trial.should_prune():
            pruner = self.trial.study.pruner
            reason = getattr(pruner, "last_reason", "") or (
                f"pruned by {type(pruner).__name__} at {at}"
            )
            raise optuna.TrialPruned(reason)


def reported(stop: Metric, metric: Metric) -> tuple[float, str | None]:
    """(sign, name) of the epoch values a trial reports when early stopping watches `stop` and
    the study optimises `metric`: sign -1 when their directions differ; name None when the
    values are the metric itself, else e.g. "-val/logloss"."""
    sign = 1.0 if stop.greater_is_better == metric.greater_is_better else -1.0
    if stop.name == metric.name:
        return sign, None
    return sign, f"{'-' if sign < 0 else ''}val/{stop.name}"
