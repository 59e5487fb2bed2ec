"""Blend weights fitted on out-of-fold predictions, and an honest score for them.

Members are predictions of the same rows in the prediction space: values (n,) for regression,
class probabilities (n, K) for classification. Weights are non-negative and sum to 1, so a
blend of probabilities stays a probability. Two ways to choose them:

- nnls_weights: least squares of the target (the one-hot target for classes) on the members,
  over the simplex (scipy's NNLS with a heavily weighted row asking the weights to sum to 1);
- caruana_weights: Caruana et al. (2004) greedy ensemble selection with replacement on the
  competition's own metric, optionally bagged (random subsets of the members, or bootstrap
  samples of the rows).

Weights chosen on the rows they are scored on flatter the blend; nested_score fits them on the
other folds' rows and scores each fold with weights that never saw it. scikit-learn has no
ensemble selection on given predictions, hence this module.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from scipy.optimize import nnls

from pipeline.model.metrics import Metric, Task

WeightFitter = Callable[[list[np.ndarray], np.ndarray], np.ndarray]


def _stack(members: Sequence[np.ndarray]) -> list[np.ndarray]:
    if not members:
        raise ValueError("A blend needs at least one member.")
    arrays = [np.asarray(m, dtype=np.float64) for m in members]
    if any(a.shape != arrays[0].shape for a in arrays):
        shapes = ", ".join(str(a.shape) for a in arrays)
        raise ValueError(f"Blend members must predict the same rows alike; got shapes {shapes}.")
    return arrays


def _normalised(weights: np.ndarray) -> np.ndarray:
    weights = np.clip(np.asarray(weights, dtype=np.float64), 0.0, None)
    total = weights.sum()
    return weights / total if total > 0 else np.full(len(weights), 1.0 / len(weights))


def blend(members: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """sum_i weights[i] * members[i]."""
    arrays = _stack(members)
    weights = np.asarray(weights, dtype=np.float64)
    if len(weights) != len(arrays):
        raise ValueError(f"{len(weights)} weights for {len(arrays)} blend members.")
    return sum(w * a for w, a in zip(weights, arrays, strict=True))


def mean_weights(members: Sequence[np.ndarray], y: np.ndarray | None = None) -> np.ndarray:
    """Equal weights (the plain average), the yardstick for the fitted ones."""
    return np.full(len(members), 1.0 / len(members))


def nnls_weights(members: Sequence[np.ndarray], y: np.ndarray, task: Task) -> np.ndarray:
    """Least-squares weights over the simplex: regression regresses y on the members' values;
    classification regresses the one-hot target on the members' probabilities, stacked over
    the classes (n * K rows)."""
    arrays = _stack(members)
    y = np.asarray(y)
    if task.is_classification:
        n, k = arrays[0].shape
        target = np.zeros((n, k))
        target[np.arange(n), y.astype(np.int64)] = 1.0
        A = np.column_stack([a.reshape(-1) for a in arrays])
        b = target.reshape(-1)
    else:
        A = np.column_stack(arrays)
        b = y.astype(np.float64)
    # the extra row costs lam^2 (sum w - 1)^2, far above any gain the squares could make
    lam = 1e3 * (np.linalg.norm(A) + np.linalg.norm(b) + 1.0)
    A = np.vstack([A, np.full((1, A.shape[1]), lam)])
    b = np.append(b, lam)
    weights, _ = nnls(A, b, maxiter=50 * A.shape[1])
    return _normalised(weights)


def caruana_weights(
    members: Sequence[np.ndarray],
    y: np.ndarray,
    metric: Metric,
    iterations: int = 50,
    bags: int = 1,
    bag_fraction: float = 0.5,
    seed: int = 0,
    bag: str = "members",
) -> np.ndarray:
    """Greedy selection with replacement: start empty, add (again) the member whose addition
    scores best, `iterations` times; weights are the counts. bags > 1 repeats this and
    averages the weights, each time on a random subset of bag_fraction of the members
    (bag="members", Caruana et al.'s guard against overfitting the out-of-fold rows, made
    for libraries of hundreds of models) or on a bootstrap sample of the rows (bag="rows":
    with a handful of members, a subset without the good ones would weight the bad)."""
    arrays = _stack(members)
    if iterations < 1 or bags < 1:
        raise ValueError(f"iterations and bags must be >= 1; got {iterations} and {bags}.")
    if bag not in ("members", "rows"):
        raise ValueError(f"bag must be 'members' or 'rows'; got {bag!r}.")
    y = np.asarray(y)
    if bags == 1:
        return _greedy(arrays, y, metric, iterations)
    rng = np.random.default_rng(seed)
    size = min(len(arrays), max(1, round(bag_fraction * len(arrays))))
    total = np.zeros(len(arrays))
    for _ in range(bags):
        if bag == "rows":
            rows = rng.integers(0, len(y), size=len(y))
            total += _greedy([a[rows] for a in arrays], y[rows], metric, iterations)
            continue
        chosen = np.sort(rng.choice(len(arrays), size=size, replace=False))
        total[chosen] += _greedy([arrays[i] for i in chosen], y, metric, iterations)
    return _normalised(total / bags)


def _greedy(arrays: list[np.ndarray], y: np.ndarray, metric: Metric, iterations: int):
    sign = 1.0 if metric.greater_is_better else -1.0
    counts = np.zeros(len(arrays))
    running = np.zeros_like(arrays[0])
    for t in range(iterations):
        scores = np.array([sign * metric(y, (running + a) / (t + 1)) for a in arrays])
        if np.all(np.isnan(scores)):
            best = 0
        else:  # ties (a flat metric such as accuracy): the member chosen most so far, so a
            # step that changes no score adds no weight to a member that helps nothing
            tied = np.flatnonzero(scores == np.nanmax(scores))
            best = int(tied[np.argmax(counts[tied])])
        counts[best] += 1
        running += arrays[best]
    return counts / iterations


def weight_fitter(method: str, task: Task, metric: Metric, **options) -> WeightFitter:
    """fit(members, y) -> weights for method caruana | nnls | mean (options: caruana_weights')."""
    if method == "caruana":
        return lambda members, y: caruana_weights(members, y, metric, **options)
    if method == "nnls":
        return lambda members, y: nnls_weights(members, y, task)
    if method == "mean":
        return mean_weights
    raise ValueError(f"Unknown blend method {method!r}; choose one of: caruana, nnls, mean.")


def nested_score(
    members: Sequence[np.ndarray],
    y: np.ndarray,
    fold_of_row: np.ndarray,
    fit_weights: WeightFitter,
    metric: Metric,
) -> dict:
    """Fold k's rows blended with weights fitted on the other folds' rows only, for every
    fold (rows with fold -1, never validated, take no part). Returns the nested per-fold
    scores, mean, std, oof (NaN off the folds) and oof_score (the honest figure), each
    fold's weights, and the weights fitted on all rows with their (flattering) score."""
    arrays = _stack(members)
    y = np.asarray(y)
    fold_of_row = np.asarray(fold_of_row)
    covered = fold_of_row >= 0
    folds = np.unique(fold_of_row[covered])
    if len(folds) < 2:
        raise ValueError("A nested blend score needs out-of-fold rows of at least 2 folds.")
    nested = np.full(arrays[0].shape, np.nan)
    scores, fold_weights = [], []
    for k in folds:
        fit_rows, rows = covered & (fold_of_row != k), fold_of_row == k
        weights = np.asarray(fit_weights([a[fit_rows] for a in arrays], y[fit_rows]))
        nested[rows] = blend([a[rows] for a in arrays], weights)
        scores.append(metric(y[rows], nested[rows]))
        fold_weights.append(weights.tolist())
    weights = np.asarray(fit_weights([a[covered] for a in arrays], y[covered]))
    in_sample = metric(y[covered], blend([a[covered] for a in arrays], weights))
    return {
        "fold_scores": scores,
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "oof_score": metric(y[covered], nested[covered]),
        "oof": nested,
        "fold_weights": fold_weights,
        "weights": weights.tolist(),
        "in_sample_score": in_sample,
    }


def fold_scores(metric: Metric, y: np.ndarray, pred: np.ndarray, fold_of_row: np.ndarray) -> dict:
    """Per-fold scores, their mean and std, and the score over all validated rows."""
    folds = np.unique(fold_of_row[fold_of_row >= 0])
    scores = [metric(y[fold_of_row == k], pred[fold_of_row == k]) for k in folds]
    covered = fold_of_row >= 0
    return {
        "fold_scores": scores,
        "mean": float(np.mean(scores)),
        "std": float(np.std(scores)),
        "oof_score": metric(y[covered], pred[covered]),
    }


def fit_blend(
    names: Sequence[str],
    oofs: Sequence[np.ndarray],
    tests: Sequence[np.ndarray],
    y: np.ndarray,
    fold_of_row: np.ndarray,
    method: str,
    task: Task,
    metric: Metric,
    **options,
) -> tuple[dict, dict, np.ndarray]:
    """Weights fitted on all out-of-fold rows and scored nested (nested_score), applied to the
    test predictions: (the metrics.json entry, nested_score's result, the blended test)."""
    fit = weight_fitter(method, task, metric, **options)
    result = nested_score(oofs, y, fold_of_row, fit, metric)
    weights = result["weights"]
    entry = {
        "method": method,
        "members": list(names),
        "weights": dict(zip(names, [round(float(w), 4) for w in weights], strict=True)),
        "nested_fold_scores": result["fold_scores"],
        "nested_mean": result["mean"],
        "nested_std": result["std"],
        "nested_oof_score": result["oof_score"],
        "in_sample_oof_score": result["in_sample_score"],
    }
    return entry, result, blend(tests, weights)
