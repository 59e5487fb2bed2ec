import numpy as np
import pytest

from pipeline.ensemble.weights import (
    blend,
    caruana_weights,
    mean_weights,
    nested_score,
    nnls_weights,
    weight_fitter,
)
from pipeline.model.metrics import Metric, Task, get_metric

RMSE = get_metric("rmse")
ACCURACY = get_metric("accuracy")
LOGLOSS = Metric(
    "logloss",
    lambda y, p: -np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-15, None))),
    greater_is_better=False,
    needs_proba=True,
)
REGRESSION, CLASSES = Task("regression"), Task("classification", n_classes=3)


def _softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def regression_case(seed=0, n=400):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) * 3 + 10
    good = y + rng.normal(size=n) * 0.5  # the truth plus noise
    noise = rng.normal(size=n) * 3 + 10  # pure noise of the same scale
    return [good, noise], y


def classification_case(seed=0, n=400, k=3):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, size=n)
    good = _softmax(3.0 * np.eye(k)[y] + rng.normal(size=(n, k)))
    noise = rng.dirichlet(np.ones(k), size=n)
    return [good, noise], y


FITTERS = {
    "nnls": lambda task, metric: lambda m, y: nnls_weights(m, y, task),
    "caruana": lambda task, metric: lambda m, y: caruana_weights(m, y, metric),
}


@pytest.mark.parametrize("method", FITTERS)
@pytest.mark.parametrize(
    "case, task, metric",
    [(regression_case, REGRESSION, RMSE), (classification_case, CLASSES, LOGLOSS)],
)
def test_pure_noise_gets_no_weight(method, case, task, metric):
    members, y = case()
    members = [members[1], members[0], members[1] + 0.0]  # noise first, and twice
    weights = FITTERS[method](task, metric)(members, y)
    assert weights.shape == (3,)
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
    assert weights[0] + weights[2] < 0.05
    assert metric(y, blend(members, weights)) <= metric(y, members[1]) + 1e-12


def test_nnls_is_least_squares_over_the_simplex():
    """Compared with a grid search over w in [0, 1] for two members."""
    rng = np.random.default_rng(3)
    y = rng.normal(size=200)
    a, b = y + rng.normal(size=200), 0.5 * y + rng.normal(size=200) * 0.7
    w = nnls_weights([a, b], y, REGRESSION)
    grid = np.linspace(0, 1, 10001)
    losses = [np.mean((g * a + (1 - g) * b - y) ** 2) for g in grid]
    assert w[0] == pytest.approx(grid[int(np.argmin(losses))], abs=2e-4)
    assert w.sum() == pytest.approx(1.0)


def test_nnls_stacks_the_classes():
    """Classification: the one-hot target on the probabilities, all classes at once."""
    members, y = classification_case(seed=4)
    w = nnls_weights(members, y, CLASSES)
    onehot = np.eye(3)[y]
    grid = np.linspace(0, 1, 2001)
    losses = [np.sum((g * members[0] + (1 - g) * members[1] - onehot) ** 2) for g in grid]
    assert w[0] == pytest.approx(grid[int(np.argmin(losses))], abs=1e-3)


def test_caruana_with_one_step_picks_the_best_member_and_counts_repeats():
    rng = np.random.default_rng(5)
    y = rng.normal(size=100)
    members = [y + rng.normal(size=100) * s for s in (2.0, 0.3, 1.0)]
    assert caruana_weights(members, y, RMSE, iterations=1).tolist() == [0.0, 1.0, 0.0]
    w = caruana_weights(members, y, RMSE, iterations=20)
    assert np.allclose(w * 20, np.round(w * 20))  # counts of 20 picks with replacement
    assert w[1] == max(w)


def test_bagged_caruana_averages_greedy_selection_over_random_member_subsets():
    rng = np.random.default_rng(8)
    y = rng.normal(size=100)
    members = [y + rng.normal(size=100) * s for s in (0.4, 0.6, 1.5, 3.0)]
    weights = caruana_weights(members, y, RMSE, iterations=10, bags=6, bag_fraction=0.5, seed=2)
    subsets = np.random.default_rng(2)
    expected = np.zeros(4)
    for _ in range(6):
        chosen = np.sort(subsets.choice(4, size=2, replace=False))
        expected[chosen] += caruana_weights([members[i] for i in chosen], y, RMSE, 10) / 6
    assert np.allclose(weights, expected) and weights.sum() == pytest.approx(1.0)
    assert (weights > 0).sum() >= 2  # bags without the best member choose among the others


def test_caruana_maximises_a_greater_is_better_metric():
    members, y = classification_case(seed=6)
    assert caruana_weights(members, y, ACCURACY, iterations=1).tolist() == [1.0, 0.0]


@pytest.mark.parametrize("method", ["caruana", "nnls", "mean"])
@pytest.mark.parametrize("seed", range(4))
def test_classification_blends_stay_normalised(method, seed):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, size=150)
    members = [rng.dirichlet(np.ones(4) * a, size=150) for a in (0.3, 1.0, 5.0)]
    members.append(_softmax(2.0 * np.eye(4)[y] + rng.normal(size=(150, 4))))
    fit = weight_fitter(method, Task("classification", n_classes=4), LOGLOSS, bags=3)
    weights = fit(members, y)
    assert (weights >= 0).all() and weights.sum() == pytest.approx(1.0)
    mixed = blend(members, weights)
    assert np.allclose(mixed.sum(axis=1), 1.0) and (mixed >= 0).all()
    result = nested_score(members, y, np.arange(150) % 5, fit, LOGLOSS)
    assert np.allclose(result["oof"].sum(axis=1), 1.0)


@pytest.mark.parametrize("method", ["nnls", "caruana"])
@pytest.mark.parametrize("seed", range(5))
def test_nested_score_is_never_better_than_in_sample(method, seed):
    """Weights that never saw the fold they score cannot beat weights fitted on every row."""
    rng = np.random.default_rng(seed)
    n = 120
    y = rng.normal(size=n)
    members = [y + rng.normal(size=n) * s for s in rng.uniform(0.5, 3.0, size=5)]
    members += [rng.normal(size=n) for _ in range(3)]
    fold_of_row = rng.permutation(np.arange(n) % 4)
    fit = weight_fitter(method, REGRESSION, RMSE)
    result = nested_score(members, y, fold_of_row, fit, RMSE)
    assert result["oof_score"] >= result["in_sample_score"]
    assert len(result["fold_scores"]) == 4 and len(result["fold_weights"]) == 4
    in_sample = blend(members, result["weights"])
    assert result["in_sample_score"] == pytest.approx(RMSE(y, in_sample))


def test_nested_score_fits_on_the_other_folds_only_and_skips_unvalidated_rows():
    members, y = regression_case(seed=7, n=90)
    fold_of_row = np.repeat([0, 1, 2], 30)
    fold_of_row[:5] = -1  # never validated
    seen = []

    def fit(m, target):
        seen.append(len(target))
        return mean_weights(m)

    result = nested_score(members, y, fold_of_row, fit, RMSE)
    assert seen == [60, 55, 55, 85]  # the two other folds each time, then every covered row
    assert np.isnan(result["oof"][:5]).all() and np.isfinite(result["oof"][5:]).all()
    assert result["fold_scores"][1] == pytest.approx(
        RMSE(y[30:60], blend(members, [0.5, 0.5])[30:60])
    )


def test_blend_is_the_weighted_sum_and_checks_its_inputs():
    a, b = np.array([1.0, 2.0]), np.array([3.0, 6.0])
    assert blend([a, b], [0.25, 0.75]).tolist() == [2.5, 5.0]
    with pytest.raises(ValueError, match="same rows"):
        blend([a, np.zeros(3)], [0.5, 0.5])
    with pytest.raises(ValueError, match="2 weights for 3"):
        blend([a, a, b], [0.5, 0.5])
    with pytest.raises(ValueError, match="Unknown blend method 'best'"):
        weight_fitter("best", REGRESSION, RMSE)


def test_bootstrap_bags_keep_noise_out_where_bags_of_members_cannot():
    """With two members, a bag of half the members may hold only the noise, which it must
    then choose; bags of bootstrapped rows always see the good member."""
    members, y = regression_case()
    rows = caruana_weights(members, y, RMSE, iterations=20, bags=10, bag="rows", seed=1)
    assert rows[1] < 0.05 and rows.sum() == pytest.approx(1.0)
    halves = caruana_weights(members, y, RMSE, iterations=20, bags=10, bag_fraction=0.5, seed=1)
    assert halves[1] > 0.2
    with pytest.raises(ValueError, match="bag must be 'members' or 'rows'; got 'cols'"):
        caruana_weights(members, y, RMSE, bags=2, bag="cols")


def test_a_step_that_changes_no_score_repeats_the_member_chosen_most():
    """Accuracy is flat: once the good member is in, adding a uniform one (first in the list)
    changes no label, and must not take the weight."""
    members, y = classification_case()
    k = members[0].shape[1]
    uniform = np.full_like(members[0], 1.0 / k)
    weights = caruana_weights([uniform, members[0]], y, ACCURACY, iterations=20)
    assert weights.tolist() == [0.0, 1.0]
