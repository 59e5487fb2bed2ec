"""Pruners that know about folds, and the registry `--pruner` picks from.

Steps: the stock Lightning pruning callback reports step = epoch, which collides across folds
(Optuna issues #3203, #4373). Here fold k, epoch e reports on step k * stride + e, where stride
is the largest train.epochs the study allows (stored with the study), so steps never collide.
When the folds train together (the fast engine) the mean over folds is reported on step e; the
trial's `steps` attribute says which, and trials are only compared with trials of the same kind.

`--pruner`:
- median (default): at fold k, epoch e, the trial's best value in fold k so far is compared with
  the best values of completed trials in the same fold up to the same epoch; worse than their
  median -> pruned. Unlike Optuna's MedianPruner, a good first fold does not shield a bad second
  one, and a hard fold is only compared with the same fold. The first `--warmup-epochs` of each
  fold are never pruned, nor anything before `--prune-after` trials completed. Written here
  because no Optuna pruner compares per fold.
- hyperband: Optuna's HyperbandPruner on the same steps (resource = epochs trained). It
  compares every trial of a bracket: keep train.monitor the same for all trials of a study
  (the other pruners compare only trials that reported the same quantity, tune/hooks.py).
- wilcoxon: Optuna's WilcoxonPruner, a paired signed-rank test against the best trial: pruned
  when the trial is worse with a one-sided p below `--prune-p` (0.1). What it pairs depends on
  the engine:
  - one fit per fold (train.engine=plain): the trial reports one value per fold, its fold score
    on step = fold index, and no epoch values; Wilcoxon pairs these with the best trial's scores
    on the same folds (the use Optuna documents for K-fold CV) after each fold but the last.
    k pairs, all worse, give p = 0.5^k at best: with p 0.1 the earliest prune is after fold 4
    (5 folds save one), with --prune-p 0.3 after fold 2.
  - folds trained together (the fast engine): all folds end at once, after training, when
    pruning saves nothing. The trial reports the mean over folds per epoch on step = epoch (as
    for median), and Wilcoxon pairs these with the best trial's curve at the same epochs, never
    within the first --warmup-epochs. Epochs of one curve are not independent samples, so p is
    a threshold here rather than a test level: the trial is pruned when its curve has stayed
    behind the best trial's at most epochs so far.
  A study can hold both kinds (covid configs the fast engine cannot stack fall back to the
  plain engine), so "the best trial" is the best completed trial numbered like this one, not
  the study's best; nothing is pruned before `--prune-after` trials of its kind completed, and
  the fold rule below is not used: Wilcoxon decides at the folds itself.
- none.
With median and hyperband, a trial is also pruned after fold k (before the last fold) when the
mean of its first k fold scores is worse than the median of completed trials over the same
folds (`fold_rule`): it is then unlikely to end up among the best, and the remaining folds are
saved.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.pruners import BasePruner, WilcoxonPruner
from optuna.trial import TrialState

from pipeline.model.registry import canonical, lookup

PER_FOLD = "fold * stride + epoch"  # the trial's `steps` attribute: how its steps are numbered
FOLD_MEAN = "epoch (mean over folds)"
FOLD_SCORES = "fold (its score)"  # wilcoxon, one fit per fold


def step_of(fold: int | None, epoch: int, stride: int) -> int:
    """The reported step of (fold, epoch); fold None = the mean over folds trained together."""
    return epoch if fold is None else fold * stride + epoch


def layout_of(kind: str, fold: int | None) -> str:
    """How a trial pruned by `kind` numbers its steps; fold None: the folds train together."""
    if fold is None:
        return FOLD_MEAN
    return FOLD_SCORES if kind == "wilcoxon" else PER_FOLD


def where(fold: int | None, epoch: int) -> str:
    return f"fold {fold + 1}, epoch {epoch + 1}" if fold is not None else f"epoch {epoch + 1}"


@dataclass(frozen=True)
class Pruning:
    """The --pruner choice and its settings, shared by every trial of a worker."""

    kind: str = "median"  # a PRUNERS name
    n_startup: int = 5  # completed trials before anything is pruned (--prune-after)
    warmup: int = 5  # epochs of each fold never pruned (--warmup-epochs)
    percentile: float = 50.0  # median: prune behind this % of completed trials (50: the median)
    p_threshold: float = 0.1  # wilcoxon: prune below this p (Optuna's default; higher prunes more)

    def __post_init__(self):  # one spelling, so that `kind == "wilcoxon"` holds for "Wilcoxon"
        object.__setattr__(self, "kind", canonical(PRUNERS, "pruner", self.kind))


def completed_like(
    study: optuna.Study, layout: str, reports: str | None = None
) -> list[optuna.trial.FrozenTrial]:
    """Completed trials whose steps are numbered like `layout` and whose values are the same
    quantity (`reports`, tune/hooks.py; None: the competition's metric)."""
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if t.user_attrs.get("steps", PER_FOLD) == layout and t.user_attrs.get("reports") == reports
    ]


def _best(values: list[float], maximize: bool) -> float:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan
    return max(finite) if maximize else min(finite)


def _maximize(study: optuna.Study) -> bool:
    return study.direction == optuna.study.StudyDirection.MAXIMIZE


class FoldMedianPruner(BasePruner):
    """Median pruning per fold (see the module docstring); `last_reason` says why it pruned."""

    def __init__(
        self,
        stride: int,
        n_startup_trials: int = 5,
        n_warmup_epochs: int = 5,
        percentile: float = 50.0,
    ):
        self.stride = stride
        self.percentile = percentile
        self.n_startup_trials = n_startup_trials
        self.n_warmup_epochs = n_warmup_epochs
        self.last_reason = ""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        layout = trial.user_attrs.get("steps", PER_FOLD)
        fold, epoch = divmod(step, self.stride) if layout == PER_FOLD else (None, step)
        if epoch < self.n_warmup_epochs:
            return False
        completed = completed_like(study, layout, trial.user_attrs.get("reports"))
        if len(completed) < max(self.n_startup_trials, 1):
            return False
        maximize = _maximize(study)
        lo = step - epoch  # the first step of this fold

        def best_until(t) -> float:
            return _best(
                [v for s, v in t.intermediate_values.items() if lo <= s <= step], maximize
            )

        mine = best_until(trial)
        others = [b for b in map(best_until, completed) if math.isfinite(b)]
        if not math.isfinite(mine) or len(others) < max(self.n_startup_trials, 1):
            return False
        median = _percentile(others, self.percentile, maximize)
        if (mine < median) if maximize else (mine > median):
            at = where(fold, epoch) + ("" if fold is not None else " (mean over folds)")
            self.last_reason = (
                f"pruned at {at}: best {mine:.4g} so far is worse than the "
                f"{_label(self.percentile)} {median:.4g} of {len(others)} completed trials at "
                "the same point"
            )
            return True
        return False


def _percentile(values: list[float], percentile: float, maximize: bool) -> float:
    """The value `percentile` % of the way from best to worst (50: the median)."""
    return float(np.percentile(values, 100 - percentile if maximize else percentile))


def _label(percentile: float) -> str:
    return "median" if percentile == 50 else f"{percentile:g}th percentile"


def fold_rule(
    study: optuna.Study, scores: list[float], folds: int, n_startup: int, percentile: float = 50.0
) -> str | None:
    """The reason to prune after len(scores) of `folds` folds, or None to go on."""
    k = len(scores)
    if k >= folds:
        return None
    maximize = _maximize(study)
    others = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        theirs = t.user_attrs.get("fold_scores") or []
        if len(theirs) >= k and all(math.isfinite(s) for s in theirs[:k]):
            others.append(float(np.mean(theirs[:k])))
    if len(others) < max(n_startup, 1):
        return None
    mine, median = float(np.mean(scores)), _percentile(others, percentile, maximize)
    if (mine < median) if maximize else (mine > median):
        return (
            f"pruned after fold {k} of {folds}: mean {mine:.4g} over folds 1-{k} is worse than "
            f"the {_label(percentile)} {median:.4g} of {len(others)} completed trials"
        )
    return None


class FoldWilcoxonPruner(BasePruner):
    """Optuna's WilcoxonPruner against the best completed trial whose steps are numbered like
    this trial's, once `n_startup_trials` such trials completed (see the module docstring);
    `last_reason` says why it pruned."""

    def __init__(
        self, p_threshold: float = 0.1, n_startup_trials: int = 5, n_warmup_epochs: int = 5
    ):
        self.p_threshold = p_threshold
        self.n_startup_trials = n_startup_trials
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.tests = {
                FOLD_SCORES: WilcoxonPruner(p_threshold=p_threshold, n_startup_steps=2),
                FOLD_MEAN: WilcoxonPruner(
                    p_threshold=p_threshold, n_startup_steps=n_warmup_epochs + 1
                ),
            }
        self.last_reason = ""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        layout = trial.user_attrs.get("steps", PER_FOLD)
        if layout not in self.tests:
            return False
        reports = trial.user_attrs.get("reports") if layout == FOLD_MEAN else None
        completed = completed_like(study, layout, reports)
        if len(completed) < max(self.n_startup_trials, 1):
            return False
        sign = 1.0 if _maximize(study) else -1.0
        best = max(completed, key=lambda t: (sign * t.value, -t.number))
        with warnings.catch_warnings():  # its note on steps past the best trial's last epoch
            warnings.simplefilter("ignore", UserWarning)
            if not self.tests[layout].prune(_BestOfKind(study, best), trial):
                return False
        common = sorted(set(trial.intermediate_values) & set(best.intermediate_values))
        mine, theirs = (np.mean([t.intermediate_values[s] for s in common]) for t in (trial, best))
        if layout == FOLD_SCORES:
            at, span = f"after fold {len(trial.intermediate_values)}", f"folds 1-{len(common)}"
        else:
            at, span = f"at epoch {trial.last_step + 1} (mean over folds)", f"{len(common)} epochs"
        self.last_reason = (
            f"pruned {at}: worse than best trial {best.number} on the same {span} (mean "
            f"{mine:.4g} vs {theirs:.4g}; Wilcoxon signed-rank p < {self.p_threshold:g})"
        )
        return True


class _BestOfKind:
    """The study as WilcoxonPruner reads it (its direction and best trial), with the best trial
    of this trial's kind: a study whose configs fall back to the plain engine holds both."""

    def __init__(self, study: optuna.Study, best: optuna.trial.FrozenTrial):
        self.direction, self.best_trial = study.direction, best


# --- the registry --------------------------------------------------------------------------------
# Each entry takes (settings, stride, folds): the steps a trial of this study can report on.
PRUNERS: dict[str, Callable[[Pruning, int, int], BasePruner]] = {
    "median": lambda p, stride, folds: FoldMedianPruner(
        stride, p.n_startup, p.warmup, p.percentile
    ),
    "wilcoxon": lambda p, stride, folds: FoldWilcoxonPruner(p.p_threshold, p.n_startup, p.warmup),
    "hyperband": lambda p, stride, folds: optuna.pruners.HyperbandPruner(
        min_resource=max(1, p.warmup), max_resource=folds * stride, reduction_factor=3
    ),
    "none": lambda p, stride, folds: optuna.pruners.NopPruner(),
}


def make_pruner(pruning: Pruning, stride: int, folds: int) -> BasePruner:
    return lookup(PRUNERS, "pruner", pruning.kind)(pruning, stride, folds)


def list_pruners() -> list[str]:
    return list(PRUNERS)
