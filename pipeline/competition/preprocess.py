"""Per-fold preprocessing: fitted on a fold's training rows only, then applied to its validation
rows and to the test rows. A new instance is made for every fold, so nothing learned from
validation rows can reach training.

A Preprocessor turns raw rows into model inputs and, for regression, fits the target map the
network learns through (pipeline/competition/target.py): an optional offset column (predict the
change from a known value) and the shift/scale that standardise the rest. Predictions are
mapped back with the inverse, so metrics are always computed on the competition's own scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_selection import SelectKBest
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import (
    MinMaxScaler,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)

from pipeline.competition.target import from_model, to_model
from pipeline.errors import DataError


class NormalQuantiles(QuantileTransformer):
    """Ranks mapped to a normal distribution (heavy tails and outliers tamed), with as many
    quantiles as the rows support: n // 30, between 10 and 1000 (TabM's rule; scikit-learn's
    fixed 1000 warns on a fold of fewer rows)."""

    def __init__(self, n_quantiles=1000, output_distribution="normal", subsample=100_000):
        super().__init__(
            n_quantiles=n_quantiles, output_distribution=output_distribution, subsample=subsample
        )

    def fit(self, X, y=None):
        self.n_quantiles = max(min(len(X) // 30, 1000), 10)
        return super().fit(X, y)


SCALERS = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
    "quantile": NormalQuantiles,
    "none": None,
}


class SelectColumns(TransformerMixin, BaseEstimator):
    """Keep the given column indices (a named feature group), as a pipeline step."""

    def __init__(self, columns: list[int]):
        self.columns = columns

    def fit(self, X, y=None) -> SelectColumns:
        return self

    def transform(self, X):
        return np.take(X, self.columns, axis=1)


@dataclass
class AffineMap:
    """transform(X) == (X[:, columns] - center) * mult, read off a fitted preprocessing."""

    columns: np.ndarray  # (F,) int64 raw column of each output feature
    center: np.ndarray  # (F,) float64
    mult: np.ndarray  # (F,) float64


def _step_affine(step) -> tuple[np.ndarray | None, np.ndarray, np.ndarray] | None:
    """(selected columns or None, center, mult) of one fitted step; None when the step is not
    a selection or a per-column scaling. Scalars broadcast over the step's columns."""
    if isinstance(step, SelectColumns):
        return np.asarray(step.columns, dtype=np.int64), np.zeros(1), np.ones(1)
    if isinstance(step, SelectKBest):
        return step.get_support(indices=True).astype(np.int64), np.zeros(1), np.ones(1)
    if isinstance(step, StandardScaler):
        center = step.mean_ if step.with_mean else np.zeros(1)
        mult = 1.0 / step.scale_ if step.with_std else np.ones(1)
        return None, np.asarray(center, dtype=np.float64), np.asarray(mult, dtype=np.float64)
    if isinstance(step, RobustScaler):
        center = step.center_ if step.with_centering else np.zeros(1)
        mult = 1.0 / step.scale_ if step.with_scaling else np.ones(1)
        return None, np.asarray(center, dtype=np.float64), np.asarray(mult, dtype=np.float64)
    if isinstance(step, MinMaxScaler):  # X * scale_ + min_ == (X - (-min_ / scale_)) * scale_
        scale = np.asarray(step.scale_, dtype=np.float64)
        if (scale == 0).any():
            return None
        return None, -np.asarray(step.min_, dtype=np.float64) / scale, scale
    return None


class Preprocessor:
    """sklearn-style: fit(X, y) on training rows, then transform / offset / target maps."""

    embed: tuple = ()  # see __init__; a subclass that skips it embeds nothing
    numeric_: int = 0  # leading numeric columns of a transformed row (see __init__'s numeric)

    def __init__(
        self,
        features: Pipeline | None,
        offset_column: int | None = None,
        scale_target: bool = False,
        embed: list[tuple[int, int]] | None = None,
        numeric: int | None = None,
    ):
        self.features = features
        self.offset_column = offset_column
        self.scale_target = scale_target
        # how many leading columns of a transformed row are numeric values (what numeric
        # embeddings read, pipeline/model/tabm.py); None: every column
        self.numeric = numeric
        # (categories, width) of the category-code columns the features end with, which the
        # model embeds (pipeline.model.models.EmbeddingInput); padding goes before them
        self.embed = list(embed or [])

    def offset(self, X: np.ndarray) -> np.ndarray:
        if self.offset_column is None:
            return np.zeros(len(X), dtype=np.float32)
        return np.asarray(X[:, self.offset_column], dtype=np.float32)

    def fit(self, X: np.ndarray, y: np.ndarray) -> Preprocessor:
        target = self._fit_target(self.offset(X), y)
        if self.features is not None:
            self.features.fit(X, target)
        return self._fitted(X)

    def _fit_target(self, offset: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The target the features are fitted against; shift_ and scale_ of the target map."""
        target = y
        if y.dtype.kind == "f":
            target = y - offset
            self.shift_ = float(target.mean()) if self.scale_target else 0.0
            self.scale_ = (float(target.std()) or 1.0) if self.scale_target else 1.0
        else:
            self.shift_, self.scale_ = 0.0, 1.0
        return target

    def _fitted(self, X: np.ndarray) -> Preprocessor:
        self.n_features_in_ = X.shape[1]
        self.pad_to_ = 0
        self.n_features_out_ = self.transform(np.asarray(X[:2])).shape[1]
        numeric = getattr(self, "numeric", None)
        self.numeric_ = self.n_features_out_ if numeric is None else numeric
        return self

    def pad_to(self, width: int) -> None:
        """Append zero columns up to `width`: folds whose encoders learned different numbers
        of columns (one-hot categories) then feed models of one shape. A column that is zero
        in every row changes no prediction."""
        self.pad_to_ = width
        self.n_features_out_ = max(self.n_features_out_, width)

    def affine(self) -> AffineMap | None:
        """The fitted preprocessing as a per-column affine map of raw columns, read from the
        fitted parameters (a scaler's mean_/scale_, a selector's support); None when a step
        is something else (an encoder, an imputer, a user's own transformer)."""
        if self.pad_to_:
            return None
        columns = np.arange(self.n_features_in_, dtype=np.int64)
        center = np.zeros(len(columns))
        mult = np.ones(len(columns))
        for _, step in self.features.steps if self.features is not None else []:
            found = _step_affine(step)
            if found is None:
                return None
            selected, c, m = found
            if selected is not None:
                columns, center, mult = columns[selected], center[selected], mult[selected]
            else:  # ((x - center) * mult - c) * m == (x - (center + c / mult)) * (mult * m)
                center = center + np.broadcast_to(c, center.shape) / mult
                mult = mult * np.broadcast_to(m, mult.shape)
        return AffineMap(columns, center, mult)

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = X if self.features is None else self.features.transform(X)
        out = np.ascontiguousarray(out, dtype=np.float32)
        if getattr(self, "pad_to_", 0) > out.shape[1]:
            m = len(getattr(self, "embed", []))
            zeros = np.zeros((len(out), self.pad_to_ - out.shape[1]), dtype=np.float32)
            out = np.concatenate(
                [out[:, : out.shape[1] - m], zeros, out[:, out.shape[1] - m :]], axis=1
            )
        return out

    def model_target(self, y: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The (regression) target in the space the model learns."""
        return to_model(y, self.offset(X), self.shift_, self.scale_).astype(np.float32)

    def inverse_target(self, z: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Model-space predictions back on the competition's scale."""
        return from_model(z, self.offset(X), self.shift_, self.scale_)


def check_finite(X: np.ndarray, pre: Preprocessor, source: str, names: list[str] | None) -> None:
    """Non-finite raw values must be ones the fitted preprocessing fills in (an imputer);
    otherwise DataError naming the file, the column and how many rows hold them.

    Scans the whole array in chunks (a memory map stays a memory map), then transforms only
    the rows that hold such values."""
    bad_rows: list[np.ndarray] = []
    counts = np.zeros(X.shape[1], dtype=np.int64)
    for start in range(0, len(X), 1 << 16):
        chunk = ~np.isfinite(np.asarray(X[start : start + (1 << 16)], dtype=np.float32))
        counts += chunk.sum(axis=0)
        bad_rows.append(start + np.flatnonzero(chunk.any(axis=1)))
    if not counts.any():
        return
    rows = np.concatenate(bad_rows)
    try:
        out = pre.transform(np.asarray(X[rows[:4096]], dtype=np.float32))
        if np.isfinite(out).all():
            return  # the preprocessing fills them in
    except ValueError:  # scikit-learn refuses infinite values
        pass
    column = int(np.argmax(counts))
    name = names[column] if names is not None else f"#{column + 1}"
    first = int(np.flatnonzero(~np.isfinite(np.asarray(X[rows, column], dtype=np.float32)))[0])
    where = f"line {rows[first] + 2:,}" if source.endswith(".csv") else f"row {rows[first] + 1:,}"
    others = int((counts > 0).sum()) - 1
    more = f" ({others} other column(s) too)" if others else ""
    raise DataError(
        f"{source}: column {name!r} holds NaN or infinite values in {counts[column]:,} of "
        f"{len(X):,} rows (first at {where}){more}; this competition's preprocessing does not "
        "fill missing values: fix the file or drop the column."
    )


ONE_PASS_ROWS = 50_000  # smaller tables are fitted fold by fold, by scikit-learn itself


def fits_in_one_pass(preprocessors: list[Preprocessor], X) -> bool:
    """Plain standard scaling (optionally of selected columns) of a large float32 array: its
    statistics for every fold come from one pass over the rows (fit_scaling_in_one_pass)."""
    if len(X) < ONE_PASS_ROWS or getattr(X, "dtype", None) != np.float32:
        return False
    for pre in preprocessors:
        steps = [] if pre.features is None else list(pre.features.steps)
        kinds = [type(step) for _, step in steps]
        if kinds not in ([StandardScaler], [SelectColumns, StandardScaler]):
            return False
    return True


def fit_scaling_in_one_pass(preprocessors, X, y, splits, chunk: int = 1 << 16) -> None:
    """Fit preprocessor k (plain standard scaling) on fold k's training rows, reading each row
    once for all folds: rows are grouped by the set of folds that train on them, each group's
    mean and sum of squared deviations are accumulated in float64 (Chan's pairwise update), and
    each fold's are combined from its groups. Folding K fits of 1.2M x 429 float32 rows into one
    pass: the scikit-learn fits took 4.7 s each on this machine. The fitted StandardScaler holds
    what its own fit would (mean_, var_, scale_, n_samples_seen_), to rounding."""
    from sklearn.preprocessing._data import _handle_zeros_in_scale, _is_constant_feature

    n = len(X)
    member = np.zeros(n, dtype=np.int64)
    for k, (tr, _) in enumerate(splits):
        member[tr] |= 1 << k
    patterns, inverse = np.unique(member, return_inverse=True)
    order = np.argsort(inverse, kind="stable")  # rows grouped, in file order within a group
    bounds = np.searchsorted(inverse[order], np.arange(len(patterns) + 1))
    stats = []
    for g in range(len(patterns)):
        rows = order[bounds[g] : bounds[g + 1]]
        count, mean, m2 = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
        for start in range(0, len(rows), chunk):
            part = np.asarray(X[rows[start : start + chunk]], dtype=np.float64)
            count, mean, m2 = _combine((count, mean, m2), _moments(part))
        stats.append((count, mean, m2))
    for k, pre in enumerate(preprocessors):
        count, mean, m2 = 0, np.zeros(X.shape[1]), np.zeros(X.shape[1])
        for g, pattern in enumerate(patterns):
            if pattern >> k & 1:
                count, mean, m2 = _combine((count, mean, m2), stats[g])
        tr = splits[k][0]
        offset = pre.offset(X[tr]) if pre.offset_column is not None else np.zeros(len(tr), "f4")
        pre._fit_target(offset, y[tr])
        columns = np.arange(X.shape[1])
        if "select" in pre.features.named_steps:
            columns = np.asarray(pre.features.named_steps["select"].columns)
        scaler = pre.features.named_steps["scale"]
        var = m2[columns] / count
        scaler.n_features_in_ = len(columns)
        scaler.n_samples_seen_ = int(count)
        scaler.mean_ = mean[columns] if scaler.with_mean else None
        scaler.var_ = var if scaler.with_std else None
        scaler.scale_ = None
        if scaler.with_std:
            constant = _is_constant_feature(var, mean[columns], count)
            scaler.scale_ = _handle_zeros_in_scale(np.sqrt(var), copy=False,
                                                   constant_mask=constant)  # fmt: skip
        pre._fitted(X[tr[:2]])


def _moments(part: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    mean = part.mean(axis=0)
    return len(part), mean, ((part - mean) ** 2).sum(axis=0)


def _combine(a, b):
    """Count, mean and sum of squared deviations of two groups of rows together."""
    (na, ma, sa), (nb, mb, sb) = a, b
    if na == 0:
        return b
    n = na + nb
    delta = mb - ma
    return n, ma + delta * (nb / n), sa + sb + delta**2 * (na * nb / n)
