"""Pruning across folds: steps that never collide, per-fold median pruning, the fold rule."""

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from pipeline.tune.hooks import Reporter
from pipeline.tune.pruners import FoldMedianPruner, Pruning, fold_rule, step_of

STRIDE = 10  # epochs per fold the study allows
FOLDS = 3


def test_steps_of_folds_and_epochs_never_collide():
    steps = [step_of(k, e, STRIDE) for k in range(FOLDS) for e in range(STRIDE)]
    assert len(set(steps)) == len(steps) == FOLDS * STRIDE
    assert steps == sorted(steps)  # fold 2 comes after fold 1: pruners see time move forward
    assert [step_of(None, e, STRIDE) for e in range(4)] == [0, 1, 2, 3]  # folds trained together


def _completed(study, curves: dict[int, list[float]], fold_scores: list[float]):
    """Add a completed trial whose fold k validated `curves[k]` epoch by epoch."""
    values = {step_of(k, e, STRIDE): v for k, vals in curves.items() for e, v in enumerate(vals)}
    study.add_trial(
        optuna.trial.create_trial(
            value=sum(fold_scores) / len(fold_scores),
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            intermediate_values=values,
            user_attrs={"fold_scores": fold_scores},
        )
    )


def _study(pruner):
    study = optuna.create_study(direction="minimize", pruner=pruner)
    # three completed trials: fold 1 is easy (~1.0), fold 2 is hard (~2.0)
    for shift in (0.0, 0.1, 0.2):
        _completed(
            study,
            {
                0: [1.5 + shift, 1.2 + shift, 1.0 + shift],
                1: [2.5 + shift, 2.2 + shift, 2.0 + shift],
            },
            [1.0 + shift, 2.0 + shift, 1.5 + shift],
        )
    return study


def _report(trial, fold, values):
    for e, v in enumerate(values):
        trial.report(v, step_of(fold, e, STRIDE))


def test_a_bad_second_fold_is_pruned_although_the_first_was_good():
    pruner = FoldMedianPruner(STRIDE, n_startup_trials=2, n_warmup_epochs=1)
    study = _study(pruner)
    trial = study.ask()
    _report(trial, 0, [1.4, 1.0, 0.9])  # better than every completed trial in fold 1
    assert not trial.should_prune()
    _report(trial, 1, [3.5, 3.4])  # far worse than all of them in fold 2
    assert trial.should_prune()
    assert "fold 2, epoch 2" in pruner.last_reason and "median 2.3" in pruner.last_reason
    # Optuna's MedianPruner compares the best value over all steps (0.9, from the easy fold)
    # with the others' values at this step (2.2-2.4), so it keeps this trial
    stock = optuna.create_study(direction="minimize", pruner=optuna.pruners.MedianPruner(2, 1))
    for t in study.get_trials(states=(TrialState.COMPLETE,)):
        stock.add_trial(t)
    twin = stock.ask()
    _report(twin, 0, [1.4, 1.0, 0.9])
    _report(twin, 1, [3.5, 3.4])
    assert not twin.should_prune()


def test_a_hard_fold_is_only_compared_with_the_same_fold():
    pruner = FoldMedianPruner(STRIDE, n_startup_trials=2, n_warmup_epochs=1)
    study = _study(pruner)
    trial = study.ask()
    _report(trial, 0, [1.5, 1.1, 1.0])
    _report(trial, 1, [2.4, 2.05])  # 2.05 is worse than any fold-1 value, but good for fold 2
    assert not trial.should_prune()


@pytest.mark.parametrize(
    ("n_startup", "warmup", "percentile", "values", "pruned"),
    [
        (2, 1, 50, [9.0, 9.0], True),
        (5, 1, 50, [9.0, 9.0], False),  # too few completed trials to judge
        (2, 3, 50, [9.0, 9.0], False),  # still inside the warm-up epochs of the fold
        (2, 1, 50, [1.6, 1.05], False),  # best so far beats the median (1.3 at epoch 2)
        (2, 1, 50, [1.6, 1.35], True),  # behind the median 1.3
        (2, 1, 90, [1.6, 1.35], False),  # but not behind 90 % of them (1.38)
    ],
)
def test_median_pruning_waits_for_startup_trials_and_warmup(
    n_startup, warmup, percentile, values, pruned
):
    pruner = FoldMedianPruner(
        STRIDE, n_startup_trials=n_startup, n_warmup_epochs=warmup, percentile=percentile
    )
    study = _study(pruner)
    trial = study.ask()
    _report(trial, 0, values)
    assert trial.should_prune() is pruned


def test_the_fold_rule_prunes_a_trial_clearly_behind_after_its_first_fold():
    study = _study(optuna.pruners.NopPruner())
    # completed trials' first folds: 1.0, 1.1, 1.2 (median 1.1)
    reason = fold_rule(study, [1.5], FOLDS, n_startup=2)
    assert reason.startswith("pruned after fold 1 of 3") and "median 1.1" in reason
    assert fold_rule(study, [1.05], FOLDS, n_startup=2) is None  # ahead of the median
    # after two folds the means over folds 1-2 are compared: 1.5, 1.6, 1.7
    assert fold_rule(study, [1.0, 2.5], FOLDS, n_startup=2) is not None
    assert fold_rule(study, [1.0, 2.0], FOLDS, n_startup=2) is None
    assert fold_rule(study, [9.0, 9.0, 9.0], FOLDS, n_startup=2) is None  # the last fold: done
    assert fold_rule(study, [9.0], FOLDS, n_startup=4) is None  # too few completed trials


def test_the_reporter_reports_fold_steps_or_the_fold_mean_and_skips_non_finite_values():
    study = optuna.create_study()
    trial = study.ask()
    reporter = Reporter(trial, Pruning(n_startup=2), STRIDE, FOLDS)
    reporter.epoch(0, 0, 1.0)
    reporter.epoch(1, 0, 2.0)
    reporter.epoch(1, 1, float("nan"))  # the fold stops there; NaN is never reported
    together = study.ask()
    fast = Reporter(together, Pruning(n_startup=2), STRIDE, FOLDS)
    fast.epoch(None, 0, 1.5)
    fast.epoch(None, 1, 1.4)
    fast.fold(0, 99.0)  # folds trained together end together: no fold rule
    values = {t.number: t.intermediate_values for t in study.get_trials()}
    assert values == {0: {0: 1.0, STRIDE: 2.0}, 1: {0: 1.5, 1: 1.4}}
