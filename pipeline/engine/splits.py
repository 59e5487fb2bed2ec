"""Cross-validation splits: scikit-learn's KFold / StratifiedKFold / GroupKFold, and blocked
folds (contiguous blocks per group, with a gap), which scikit-learn does not have: rows that
are overlapping time windows (COVID's sliding windows, TIMIT's spliced frames) leak through
shuffled folds.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedKFold

from pipeline.competition.base import TrainData
from pipeline.errors import ConfigError

Split = tuple[np.ndarray, np.ndarray]


def blocked_splits(
    n_rows: int, folds: int, gap: int = 0, groups: np.ndarray | None = None
) -> list[Split]:
    """Contiguous blocks in row order (within each group when groups are given).

    Fold k validates on the k-th block of every group and trains on the rest of that group,
    minus `gap` rows on each side of the block, so rows that share time steps with a
    validation row never train. Rows must be in time order within a group.
    """
    if groups is None:
        groups = np.zeros(n_rows, dtype=np.int64)
    val = [[] for _ in range(folds)]
    train = [[] for _ in range(folds)]
    for g in _unique_in_order(groups):
        idx = np.flatnonzero(groups == g)
        if len(idx) < folds:
            raise ConfigError(
                f"cv.folds={folds} is more than the {len(idx)} rows of group {g!r}; "
                "use fewer folds for blocked CV."
            )
        pos = np.arange(len(idx))
        for k, block in enumerate(np.array_split(pos, folds)):
            lo, hi = block[0] - gap, block[-1] + gap
            val[k].append(idx[block])
            train[k].append(idx[(pos < lo) | (pos > hi)])
    return [(np.concatenate(t), np.concatenate(v)) for t, v in zip(train, val, strict=True)]


def _unique_in_order(values: np.ndarray) -> list:
    _, first = np.unique(values, return_index=True)
    return list(values[np.sort(first)])


def make_splits(cv_cfg, train: TrainData, seed: int, classification: bool) -> list[Split]:
    n = len(train.y)
    strategy = cv_cfg.strategy
    if strategy == "blocked":
        return blocked_splits(n, cv_cfg.folds, cv_cfg.gap, train.groups)
    if cv_cfg.gap:
        raise ConfigError("cv.gap applies to cv.strategy=blocked only.")
    if n < cv_cfg.folds:
        raise ConfigError(f"cv.folds={cv_cfg.folds} is more than the {n} training rows.")
    if strategy == "group":
        if train.groups is None:
            raise ConfigError("cv.strategy=group needs a competition that defines row groups.")
        n_groups = len(np.unique(train.groups))
        if n_groups < cv_cfg.folds:
            raise ConfigError(f"cv.folds={cv_cfg.folds} is more than the {n_groups} groups.")
        return list(GroupKFold(cv_cfg.folds).split(train.X, train.y, train.groups))
    if strategy == "stratified":
        if not classification:
            raise ConfigError("cv.strategy=stratified needs a classification task; use kfold.")
        counts = np.bincount(train.y)
        if counts[counts > 0].min() < cv_cfg.folds:
            warnings.warn(
                "Some classes have fewer rows than cv.folds; their folds are unbalanced.",
                stacklevel=2,
            )
        splitter = StratifiedKFold(
            cv_cfg.folds, shuffle=cv_cfg.shuffle, random_state=seed if cv_cfg.shuffle else None
        )
        return list(splitter.split(np.zeros(n), train.y))
    splitter = KFold(
        cv_cfg.folds, shuffle=cv_cfg.shuffle, random_state=seed if cv_cfg.shuffle else None
    )
    return list(splitter.split(np.zeros(n)))
