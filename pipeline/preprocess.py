"""Per-fold preprocessing: fitted on a fold's training rows only, then applied to its validation
rows and to the test rows. A new instance is made for every fold, so nothing learned from
validation rows can reach training.

A Preprocessor turns raw rows into model inputs and, for regression, describes the target the
network learns: y_model = (y - offset(X) - shift) / scale, where offset is an optional raw column
(predict the change from a known value) and shift/scale standardise the rest. Predictions are
mapped back with the inverse, so metrics are always computed on the competition's own scale.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
from sklearn.feature_selection import SelectKBest, f_classif, f_regression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, MinMaxScaler, RobustScaler, StandardScaler

from pipeline.errors import ConfigError

SCALERS = {
    "standard": StandardScaler,
    "minmax": MinMaxScaler,
    "robust": RobustScaler,
    "none": None,
}


@dataclass
class TabularFeatures:
    """Feature options shared by tabular competitions; subclass to add a competition's own."""

    select: str = "all"  # all | groups | kbest
    groups: list[str] = field(default_factory=list)  # select=groups: named column groups
    k: int = 16  # select=kbest: keep the k columns with the best univariate score on the fold
    scale: str = "standard"  # standard | minmax | robust | none, fitted on the training fold
    scale_target: bool = False  # regression: standardise the target on the training fold

    def group_names(self) -> list[str]:
        """Names valid in `groups`; competitions with column groups override this."""
        return []

    def check(self) -> None:
        if self.select not in ("all", "groups", "kbest"):
            raise ConfigError(
                f"features.select must be one of: all, groups, kbest; got {self.select!r}."
            )
        if self.scale not in SCALERS:
            raise ConfigError(
                f"features.scale must be one of: {', '.join(SCALERS)}; got {self.scale!r}."
            )
        if self.k < 1:
            raise ConfigError(f"features.k must be an int >= 1; got {self.k!r}.")
        valid = self.group_names()
        if self.select == "groups":
            if not self.groups:
                raise ConfigError(
                    "features.select=groups needs features.groups, a list from: "
                    f"{', '.join(valid) or '(this competition has no groups)'}."
                )
            for name in self.groups:
                if name not in valid:
                    raise ConfigError(
                        f"features.groups: unknown group {name!r}; choose from: "
                        f"{', '.join(valid)}."
                    )


class Preprocessor:
    """sklearn-style: fit(X, y) on training rows, then transform / offset / target maps."""

    def __init__(
        self,
        features: Pipeline | None,
        offset_column: int | None = None,
        scale_target: bool = False,
    ):
        self.features = features
        self.offset_column = offset_column
        self.scale_target = scale_target

    def offset(self, X: np.ndarray) -> np.ndarray:
        if self.offset_column is None:
            return np.zeros(len(X), dtype=np.float32)
        return np.asarray(X[:, self.offset_column], dtype=np.float32)

    def fit(self, X: np.ndarray, y: np.ndarray) -> Preprocessor:
        target = y
        if y.dtype.kind == "f":
            target = y - self.offset(X)
            self.shift_ = float(target.mean()) if self.scale_target else 0.0
            self.scale_ = (float(target.std()) or 1.0) if self.scale_target else 1.0
        else:
            self.shift_, self.scale_ = 0.0, 1.0
        if self.features is not None:
            self.features.fit(X, target)
        self.n_features_out_ = self.transform(X[:2]).shape[1]
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        out = X if self.features is None else self.features.transform(X)
        return np.ascontiguousarray(out, dtype=np.float32)

    def model_target(self, y: np.ndarray, X: np.ndarray) -> np.ndarray:
        """The (regression) target in the space the model learns."""
        return ((y - self.offset(X) - self.shift_) / self.scale_).astype(np.float32)

    def inverse_target(self, z: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Model-space predictions back on the competition's scale."""
        return z * self.scale_ + self.shift_ + self.offset(X)


def tabular_preprocessor(
    cfg: TabularFeatures,
    task_kind: str,
    groups: dict[str, list[int]] | None = None,
    offset_column: int | None = None,
    n_columns: int | None = None,
) -> Preprocessor:
    """Column selection (named groups or SelectKBest) then scaling, fitted per fold."""
    steps = []
    if cfg.select == "groups":
        columns = sorted({c for name in cfg.groups for c in (groups or {})[name]})
        steps.append(("select", FunctionTransformer(partial(np.take, indices=columns, axis=1))))
    elif cfg.select == "kbest":
        if n_columns is not None and cfg.k > n_columns:
            raise ConfigError(f"features.k must be <= {n_columns} (the columns); got {cfg.k}.")
        score = f_classif if task_kind == "classification" else f_regression
        steps.append(("select", SelectKBest(score, k=cfg.k)))
    scaler = SCALERS[cfg.scale]
    if scaler is not None:
        steps.append(("scale", scaler()))
    features = Pipeline(steps) if steps else None
    return Preprocessor(features, offset_column=offset_column, scale_target=cfg.scale_target)
