"""The features section of tabular competitions and the per-fold preprocessing it builds.

One section, `TabularFeatures` (features.* keys), serves the plug-ins (covid, demo, timit
subclass it to add their own keys) and every competition.yaml competition. One builder,
`tabular_preprocessor`, turns it into a fresh, unfitted Preprocessor for a fold:

- numeric columns without missing cells and no categorical columns (the plug-ins' arrays):
  column selection (named groups, or SelectKBest) then scaling, a per-column affine map the
  fast engine applies on the device;
- otherwise scikit-learn's ColumnTransformer. Numeric columns: imputation (median by default)
  with a missing-value indicator, then scaling. Categorical columns (category codes, NaN where
  missing): one-hot, where rare categories share one column and categories the training fold
  never saw map to it too (OneHotEncoder's infrequent handling); columns with many categories
  are target-encoded instead (TargetEncoder, cross-fitted on the training rows) or
  ordinal-coded, or embedded by the network (encode=embed).

Everything is fitted on the fold's training rows only; a fresh instance is made for every fold.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import sklearn
from sklearn.compose import ColumnTransformer
from sklearn.feature_selection import SelectKBest, f_classif, f_regression
from sklearn.impute import MissingIndicator, SimpleImputer
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    OneHotEncoder,
    OrdinalEncoder,
    TargetEncoder,
)

from pipeline.competition.preprocess import SCALERS, Preprocessor, SelectColumns
from pipeline.errors import ConfigError

Encoding = Literal["onehot", "target", "ordinal", "embed"]


# The defaults of every competition.yaml competition, under its own defaults: block (docs/
# tabular-models.md has the measurements behind them): the TabM-style ensemble with periodic
# embeddings of normal-quantile columns, AdamW at TabM's lr and weight decay, a patience of 10
# epochs (TabM's 16 costs 60% more epochs after the best one on a CPU), label smoothing where
# the metric scores labels; the references on the same folds, HistGradientBoosting and
# LightGBM among them.
CSV_DEFAULTS = {
    "cv": {"references": ["linear", "hgb", "lightgbm"]},
    "features": {"scale": "quantile"},
    "model": {"name": "tabm"},
    "optim": {"lr": 2e-3, "weight_decay": 3e-4},
    "train": {"patience": 10, "label_smoothing": "auto"},
}


@dataclass
class TabularFeatures:
    """features.* keys of tabular competitions; a plug-in subclasses it to add its own."""

    select: Literal["all", "groups", "kbest"] = "all"  # groups: named column groups
    groups: list[str] = field(default_factory=list)  # select=groups: the groups to keep
    k: int = 16  # select=kbest: keep the k columns with the best univariate score on the fold
    # standard | minmax | robust | quantile | none, fitted on the fold
    scale: Literal["standard", "minmax", "robust", "quantile", "none"] = "standard"
    # > 0: after scaling, numbers are softly clipped to about +-clip, x / sqrt(1 + (x/clip)^2)
    # (RealMLP's smooth clipping, with scale=robust and clip=3): outliers keep their order but
    # no longer dominate a layer; 0 = off
    clip: float = 0.0
    # regression: standardise the target on the training fold (mean 0, std 1): the network's
    # initial outputs and learning rate then suit any target's scale (a target in the
    # thousands, trained raw, stopped at the epoch cap still improving)
    scale_target: bool = True
    # The keys below act on missing cells and categorical columns (competition.yaml files).
    impute: Literal["median", "mean"] = "median"  # numeric columns, fitted on the fold
    missing_indicator: bool = True  # one 0/1 column per numeric column that has missing cells
    encode: Encoding = "onehot"  # categorical columns with at most max_onehot categories
    high_cardinality: Encoding = "target"  # categorical columns with more categories
    max_onehot: int = 30  # categories (in train and test) above which high_cardinality applies
    min_frequency: int = 5  # one-hot: categories rarer than this in the fold share a column
    embed_dim: int = 0  # embed: width of each column's embedding; 0: min(32, 1.6 n^0.56)

    def group_names(self) -> list[str]:
        """Names valid in `groups`; competitions with column groups override this."""
        return []

    def check(self) -> None:
        if self.k < 1:
            raise ConfigError(f"features.k must be an int >= 1; got {self.k!r}.")
        if self.max_onehot < 2:
            raise ConfigError(f"features.max_onehot must be an int >= 2; got {self.max_onehot}.")
        if self.clip < 0:
            raise ConfigError(f"features.clip must be a float >= 0; got {self.clip!r}.")
        if self.embed_dim < 0:
            raise ConfigError(f"features.embed_dim must be an int >= 0; got {self.embed_dim}.")
        if self.min_frequency < 1:
            raise ConfigError(
                f"features.min_frequency must be an int >= 1; got {self.min_frequency}."
            )
        if self.select == "kbest" and "embed" in (self.encode, self.high_cardinality):
            raise ConfigError(
                "features.select=kbest would reorder the embedded code columns; use select=all "
                "with embed."
            )
        if self.select == "groups":
            self._check_groups()

    def _check_groups(self) -> None:
        valid = self.group_names()
        if not valid:
            raise ConfigError(
                "features.select=groups needs named column groups; this competition has none: "
                "use all or kbest."
            )
        if not self.groups:
            raise ConfigError(
                f"features.select=groups needs features.groups, a list from: {', '.join(valid)}."
            )
        for name in self.groups:
            if name not in valid:
                raise ConfigError(
                    f"features.groups: unknown group {name!r}; choose from: {', '.join(valid)}."
                )


@dataclass
class ColumnKinds:
    """What the builder needs to know of a table's raw columns."""

    categorical: np.ndarray  # bool per column: category codes 0..n-1, NaN where missing
    n_categories: list[int]  # per categorical column, in column order
    has_missing: np.ndarray  # bool per column: NaN in train or test

    @property
    def plain(self) -> bool:
        """Numbers only, none missing: selection and scaling are all there is to do."""
        return not self.categorical.any() and not self.has_missing.any()


def tabular_preprocessor(
    cfg: TabularFeatures,
    task_kind: str,
    n_columns: int,
    *,
    kinds: ColumnKinds | None = None,
    groups: dict[str, list[int]] | None = None,
    offset_column: int | None = None,
    seed: int = 0,
) -> Preprocessor:
    """A fresh, unfitted Preprocessor for one fold. `kinds` None: every column is a number
    and none is missing (arrays a plug-in has checked)."""
    if kinds is None or kinds.plain:
        return _plain(cfg, task_kind, n_columns, groups, offset_column)
    return _columns(cfg, task_kind, kinds, seed)


def _plain(cfg, task_kind, n_columns, groups, offset_column) -> Preprocessor:
    """Column selection (named groups or SelectKBest), then scaling."""
    steps = []
    if cfg.select == "groups":
        columns = sorted({c for name in cfg.groups for c in (groups or {})[name]})
        steps.append(("select", SelectColumns(columns)))
    elif cfg.select == "kbest":
        if cfg.k > n_columns:
            raise ConfigError(f"features.k must be <= {n_columns} (the columns); got {cfg.k}.")
        score = f_classif if task_kind == "classification" else f_regression
        steps.append(("select", SelectKBest(score, k=cfg.k)))
    steps += _scaling(cfg)
    features = Pipeline(steps) if steps else None
    return Preprocessor(features, offset_column=offset_column, scale_target=cfg.scale_target)


def soft_clip(X, clip: float):
    """x / sqrt(1 + (x / clip)^2): about x near 0, bounded by +-clip, order kept."""
    X = np.asarray(X, dtype=np.float64)
    return X / np.sqrt(1.0 + (X / clip) ** 2)


def _scaling(cfg: TabularFeatures) -> list:
    """features.scale, then the soft clip of features.clip."""
    steps = []
    scaler = SCALERS[cfg.scale]
    if scaler is not None:
        steps.append(("scale", scaler()))
    if cfg.clip > 0:
        clip = FunctionTransformer(
            soft_clip, kw_args={"clip": cfg.clip}, feature_names_out="one-to-one"
        )
        steps.append(("clip", clip))
    return steps


class CrossFitTargetEncoder(TargetEncoder):
    """TargetEncoder whose training rows get the cross-fitted encoding of fit_transform also
    when the engine asks for them through transform() (a row's own target never encodes it)."""

    def fit_transform(self, X, y):
        out = super().fit_transform(X, y)
        self._train_key, self._train_out = _key(X), out
        return out

    def fit(self, X, y):
        self.fit_transform(X, y)
        return self

    def transform(self, X):
        if getattr(self, "_train_key", None) == _key(X):
            return self._train_out
        return super().transform(X)


def _cross_fit(task_kind: str, seed: int) -> dict:
    """TargetEncoder's seeded 5-fold cross fitting: scikit-learn 1.9 takes the splitter (and
    deprecates shuffle/random_state), older releases take the options."""
    if tuple(int(p) for p in sklearn.__version__.split(".")[:2]) < (1, 9):
        return {"cv": 5, "shuffle": True, "random_state": seed}
    splitter = KFold if task_kind == "regression" else StratifiedKFold
    return {"cv": splitter(5, shuffle=True, random_state=seed)}


def _plus_one(X):
    return np.asarray(X, dtype=np.float64) + 1.0


def _key(X) -> tuple:
    data = np.ascontiguousarray(X)
    return data.shape, hashlib.blake2b(data.tobytes(), digest_size=16).hexdigest()


def _columns(cfg: TabularFeatures, task_kind: str, kinds: ColumnKinds, seed: int) -> Preprocessor:
    """Numeric and categorical columns, each kind through its own transformers."""
    categorical, n_categories, has_missing = (
        kinds.categorical,
        kinds.n_categories,
        kinds.has_missing,
    )
    numeric = np.flatnonzero(~categorical).tolist()
    parts = []
    if numeric:
        steps = [("impute", SimpleImputer(strategy=cfg.impute, keep_empty_features=True))]
        block = Pipeline(steps + _scaling(cfg))
        missing = [i for i, c in enumerate(numeric) if has_missing[c]]
        if cfg.missing_indicator and missing:  # same columns in every fold: equal widths
            indicator = ColumnTransformer(
                [("cols", MissingIndicator(features="all"), missing)], sparse_threshold=0
            )
            block = FeatureUnion([("values", block), ("missing", indicator)])
        parts.append(("numeric", block, numeric))
    cats = np.flatnonzero(categorical).tolist()
    by_encoding: dict[str, list[int]] = {}
    for c, n in zip(cats, n_categories):
        encoding = cfg.encode if n <= cfg.max_onehot else cfg.high_cardinality
        by_encoding.setdefault(encoding, []).append(c)
    embed = []
    for encoding, columns in sorted(by_encoding.items(), key=lambda kv: kv[0] == "embed"):
        parts.append((encoding, _encoder(encoding, cfg, task_kind, seed), columns))
        if encoding == "embed":  # last: the model embeds the final columns
            sizes = [n_categories[cats.index(c)] + 2 for c in columns]  # + unknown, rare
            embed = [(n, cfg.embed_dim or min(32, round(1.6 * n**0.56))) for n in sizes]
    steps = [("columns", ColumnTransformer(parts, sparse_threshold=0))]
    if cfg.select == "kbest":
        score = f_classif if task_kind == "classification" else f_regression
        steps.append(("select", SelectKBest(score, k=cfg.k)))
    # the numeric values lead every row (the numeric block comes first); a selection
    # reorders the columns, so then no column is known to be a number
    leading = len(numeric) if cfg.select != "kbest" else 0
    return Preprocessor(
        Pipeline(steps), scale_target=cfg.scale_target, embed=embed, numeric=leading
    )


def _encoder(encoding: str, cfg: TabularFeatures, task_kind: str, seed: int):
    fill = SimpleImputer(strategy="constant", fill_value=-1.0)  # missing: a category of its own
    if encoding == "onehot":
        encoder = OneHotEncoder(
            handle_unknown="infrequent_if_exist",
            min_frequency=cfg.min_frequency,
            sparse_output=False,
        )
    elif encoding == "target":
        target_type = "continuous" if task_kind == "regression" else "auto"
        encoder = CrossFitTargetEncoder(target_type=target_type, **_cross_fit(task_kind, seed))
    elif encoding == "embed":  # codes 1..n of the fold's categories; 0 unknown/missing/rare
        encoder = OrdinalEncoder(
            handle_unknown="use_encoded_value", unknown_value=-1, min_frequency=cfg.min_frequency
        )
        return Pipeline(
            [("fill", fill), ("encode", encoder), ("shift", FunctionTransformer(_plus_one))]
        )
    else:
        encoder = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1)
        scaling = _scaling(cfg)
        if scaling:
            return Pipeline([("fill", fill), ("encode", encoder), *scaling])
    return Pipeline([("fill", fill), ("encode", encoder)])
