"""Pruning across folds: steps that never collide, per-fold median pruning, the fold rule,
Wilcoxon on fold scores or on the curve of folds trained together."""

import optuna
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from pipeline.tune.hooks import Reporter
from pipeline.tune.pruners import (
    FOLD_MEAN,
    FOLD_SCORES,
    PER_FOLD,
    FoldMedianPruner,
    Pruning,
    fold_rule,
    make_pruner,
    step_of,
)

STRIDE = 10  # epochs per fold the study allows
FOLDS = 3


def test_steps_of_folds_and_epochs_never_collide():
    steps = [step_of(k, e, STRIDE) for k in range(FOLDS) for e in range(STRIDE)]
    assert len(set(steps)) == len(steps) == FOLDS * STRIDE
    assert steps == sorted(steps)  # fold 2 comes after fold 1: pruners see time move forward
    assert [step_of(None, e, STRIDE) for e in range(4)] == [0, 1, 2, 3]  # folds trained together


def _add(study, value: float, values: dict[int, float], **attrs):
    """Add a completed trial with this value that reported `values` ({step: value})."""
    study.add_trial(
        optuna.trial.create_trial(
            value=value,
            params={"x": 0.5},
            distributions={"x": FloatDistribution(0, 1)},
            intermediate_values=values,
            user_attrs=attrs,
        )
    )


def _completed(study, curves: dict[int, list[float]], fold_scores: list[float]):
    """Add a completed trial whose fold k validated `curves[k]` epoch by epoch."""
    values = {step_of(k, e, STRIDE): v for k, vals in curves.items() for e, v in enumerate(vals)}
    _add(study, sum(fold_scores) / len(fold_scores), values, fold_scores=fold_scores)


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


def test_a_pruner_name_is_looked_up_in_the_registry():
    assert Pruning(kind="Wilcoxon").kind == "wilcoxon"
    with pytest.raises(
        ValueError, match=r"Unknown pruner 'asha'; choose one of: median, wilcoxon"
    ):
        Pruning(kind="asha")


# --- wilcoxon ------------------------------------------------------------------------------------

BEST = [1.0, 2.0, 1.5, 1.2, 1.8]  # the best trial's score (RMSE) per fold: easy and hard folds


def _done(study, layout, values: dict[int, float]):
    _add(study, sum(values.values()) / len(values), values, steps=layout)


def _wilcoxon(p=0.1, n_startup=2, warmup=1, layout=FOLD_SCORES, best=BEST):
    """A study whose best trial (number 0) reported `best`, then a worse one."""
    pruning = Pruning(kind="wilcoxon", n_startup=n_startup, warmup=warmup, p_threshold=p)
    study = optuna.create_study(direction="minimize", pruner=make_pruner(pruning, STRIDE, 5))
    _done(study, layout, dict(enumerate(best)))
    _done(study, layout, {k: v + 0.3 for k, v in enumerate(best)})
    return study, pruning


def _folds(study, pruning, scores):
    """Run a trial's folds one after the other through the hooks (one fit per fold): the
    pruning reason, or None when every fold ran."""
    reporter = Reporter(study.ask(), pruning, STRIDE, len(scores))
    for k, score in enumerate(scores):
        for e in range(3):
            reporter.epoch(k, e, score + 1.0 - e / 10)  # epoch values: not reported to wilcoxon
        try:
            reporter.fold(k, score)
        except optuna.TrialPruned as exc:
            return str(exc)
    return None


@pytest.mark.parametrize("p", [0.3, 0.2, 0.1, 0.05])
def test_wilcoxon_prunes_a_trial_worse_on_every_fold_as_soon_as_the_test_allows(p):
    study, pruning = _wilcoxon(p)
    reason = _folds(study, pruning, [s + 0.5 for s in BEST])
    # k paired folds, all worse: the one-sided signed-rank p is 0.5 ** k; the last fold is
    # never cut short (nothing left to save), so p = 0.05 (k = 5 of 5) prunes nothing
    k = next((k for k in range(2, len(BEST)) if 0.5**k < p), None)
    if k is None:
        assert reason is None
        return
    assert reason.startswith(f"pruned after fold {k}: worse than best trial 0 on the same folds")
    assert f"mean {sum(BEST[:k]) / k + 0.5:.4g} vs {sum(BEST[:k]) / k:.4g}" in reason
    trial = study.get_trials()[-1]
    assert trial.intermediate_values == {i: BEST[i] + 0.5 for i in range(k)}  # fold scores only


def test_wilcoxon_keeps_a_trial_better_than_the_best_and_one_worse_on_a_single_fold():
    study, pruning = _wilcoxon(p=0.3)
    assert _folds(study, pruning, [s - 0.2 for s in BEST]) is None
    worse_on_the_first = [BEST[0] + 0.5] + [s - 0.1 for s in BEST[1:]]
    assert _folds(study, pruning, worse_on_the_first) is None
    # a trial whose steps are fold scores reports exactly its fold scores
    better = study.get_trials()[2]
    assert better.intermediate_values == {k: s - 0.2 for k, s in enumerate(BEST)}


def test_wilcoxon_waits_for_startup_trials_and_compares_with_the_best_trial_of_its_kind():
    worse = [s + 0.5 for s in BEST]
    study, pruning = _wilcoxon(p=0.3, n_startup=3)  # two completed trials: too few
    assert _folds(study, pruning, worse) is None
    # the study's best trial numbered its steps per fold and epoch (another engine or pruner):
    # paired with those steps the trial would look better; it is paired with trial 0 instead
    study, pruning = _wilcoxon(p=0.3)
    _add(study, 0.1, {step_of(0, e, STRIDE): 99.0 for e in range(STRIDE)}, steps=PER_FOLD)
    assert study.best_trial.number == 2
    assert _folds(study, pruning, worse).startswith("pruned after fold 2: worse than best trial 0")


CURVE = [3.0, 2.0, 1.5, 1.3, 1.2, 1.1, 1.05]  # the best trial's mean over folds, epoch by epoch


def test_wilcoxon_with_folds_trained_together_pairs_the_curve_after_the_warmup_epochs():
    study, pruning = _wilcoxon(p=0.1, warmup=3, layout=FOLD_MEAN, best=CURVE)
    reporter = Reporter(study.ask(), pruning, STRIDE, 5)
    with pytest.raises(optuna.TrialPruned) as pruned:
        for e, value in enumerate(CURVE):
            reporter.epoch(None, e, value + 0.4)
    # never in the 3 warm-up epochs; then 4 epochs behind the best: p = 0.5 ** 4 < 0.1
    assert e == 3
    assert str(pruned.value).startswith(
        "pruned at epoch 4 (mean over folds): worse than best trial 0 on the same 4 epochs"
    )
    better = Reporter(study.ask(), pruning, STRIDE, 5)
    for e, value in enumerate(CURVE):
        better.epoch(None, e, value - 0.1)
    for k in range(5):  # the folds end together after training: nothing reported or pruned
        better.fold(k, 1.0)
    assert study.get_trials()[-1].intermediate_values == {e: v - 0.1 for e, v in enumerate(CURVE)}


# --- a watched quantity that is not the study's metric -------------------------------------------


def test_a_loss_watched_for_a_maximised_metric_is_reported_negated_and_compared_with_its_kind():
    from pipeline.model.metrics import get_metric
    from pipeline.tune.hooks import reported

    auc, logloss = get_metric("auc"), get_metric("logloss")
    assert reported(logloss, auc) == (-1.0, "-val/logloss")
    assert reported(get_metric("mse"), get_metric("rmse")) == (1.0, "val/mse")
    assert reported(auc, auc) == (1.0, None)
    pruning = Pruning(n_startup=2, warmup=1)
    study = optuna.create_study(direction="maximize", pruner=make_pruner(pruning, STRIDE, FOLDS))
    for loss in (0.50, 0.55, 0.60):  # trials that watched logloss: fold 1's curve, negated
        curve = {step_of(0, e, STRIDE): -(loss + 0.2 - 0.1 * e) for e in range(3)}
        _add(study, 0.9, curve, steps=PER_FOLD, reports="-val/logloss")
    for _ in range(3):  # trials that reported auc itself: another quantity, never compared
        _add(study, 0.8, {step_of(0, e, STRIDE): 0.8 for e in range(3)}, steps=PER_FOLD)
    watched = (logloss, auc)

    def run(losses):
        trial = study.ask()
        reporter = Reporter(trial, pruning, STRIDE, FOLDS, watched=watched)
        try:
            for e, loss in enumerate(losses):
                reporter.epoch(0, e, loss)
        except optuna.TrialPruned as exc:
            return trial, str(exc)
        return trial, None

    # a lower loss is the better trial: kept (reported as -0.6, -0.4 in the study's direction;
    # reported as they are, 0.6 and 0.4 would sit below every auc-like value and be pruned)
    better, reason = run([0.6, 0.4])
    assert reason is None
    assert study.get_trials()[better.number].intermediate_values == {0: -0.6, 1: -0.4}
    assert study.get_trials()[better.number].user_attrs["reports"] == "-val/logloss"
    _, reason = run([0.9, 0.85])  # a higher loss than all three: pruned
    assert reason.startswith("pruned at fold 1, epoch 2: best -0.85 so far is worse than")
    assert "of 3 completed trials" in reason  # only those that reported -val/logloss
