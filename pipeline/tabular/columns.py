"""Reading a CSV competition's files into the engine's arrays, with column types inferred.

A feature column is numeric (floats, NaN where missing) or categorical (strings, booleans, and
the columns competition.yaml lists under `categorical:`), stored as a category code 0..n-1 with
NaN where missing. The codes number the sorted values seen in train and test together: no
statistics and no labels are used, so nothing about a validation fold's target leaks. What is
learned from the values (imputation, scaling, encoders) is fitted per fold, in
pipeline/tabular/features.py.

Class labels (strings, booleans, any integers) are numbered once, in sorted order (the binary
`positive:` class is number 1), and written back by name into the submission.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.competition.ids import where
from pipeline.errors import DataError
from pipeline.tabular.read import FLOAT32_MAX


def require_columns(frame: pd.DataFrame, columns: list[str], role: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        shown = ", ".join(repr(c) for c in list(frame.columns)[:8])
        raise DataError(
            f"{frame.attrs['source']} has no column {missing[0]!r} ({role}); its columns are "
            f"{shown}{' ...' if len(frame.columns) > 8 else ''}. Fix competition.yaml."
        )


def category_text(column: pd.Series) -> pd.Series:
    """Values as text (NaN stays NaN), the same for 3 and 3.0 (an int column read as floats in
    a file where it has missing cells)."""
    if column.dtype.kind in "iufb":

        def text(v):
            if pd.isna(v):
                return np.nan
            if isinstance(v, (bool, np.bool_)):
                return str(bool(v))
            return str(int(v)) if float(v).is_integer() else repr(float(v))

        return column.map(text)
    return column.map(lambda v: v if pd.isna(v) else str(v))


@dataclass
class Layout:
    """The feature columns of a CSV competition: names, types and category values."""

    features: list[str]
    categorical: np.ndarray  # bool per feature
    categories: dict[str, list[str]]  # sorted category text per categorical column

    @classmethod
    def infer(
        cls, train: pd.DataFrame, test: pd.DataFrame, features: list[str], declared: list[str]
    ) -> Layout:
        cats: dict[str, list[str]] = {}
        mask = []
        for name in features:
            kind = train[name].dtype.kind
            # empty in every training row, text in the test file: a column of categories that
            # tells the model nothing, not numbers the test file contradicts
            unread = train[name].isna().all() and test[name].dtype.kind not in "iuf"
            is_cat = name in declared or kind not in "iuf" or unread
            if not is_cat and test[name].dtype.kind not in "iuf":
                _first_text(test, name, "numbers")
            mask.append(is_cat)
            if is_cat:
                values = pd.concat([category_text(train[name]), category_text(test[name])])
                cats[name] = sorted(values.dropna().unique().tolist())
        return cls(list(features), np.array(mask, dtype=bool), cats)

    def matrix(self, frame: pd.DataFrame) -> np.ndarray:
        """float32 (rows, features): numbers, or category codes; NaN where missing."""
        source = frame.attrs["source"]
        out = np.empty((len(frame), len(self.features)), dtype=np.float32)
        for j, name in enumerate(self.features):
            if self.categorical[j]:
                index = pd.Index(self.categories[name])
                codes = index.get_indexer(category_text(frame[name])).astype(np.float32)
                codes[codes < 0] = np.nan
                out[:, j] = codes
            else:
                out[:, j] = _finite_or_missing(frame[name], source)
        return out


def _first_text(frame: pd.DataFrame, name: str, expected: str) -> None:
    values = pd.to_numeric(frame[name], errors="coerce")
    bad = values.isna() & frame[name].notna()
    row = int(np.argmax(bad.to_numpy()))
    raise DataError(
        f"{frame.attrs['source']} {where(frame.attrs['source'], row)}, column {name!r} holds "
        f"{frame[name].iloc[row]!r} where the train file holds {expected}; fix the file, or "
        "list the column under categorical: in competition.yaml."
    )


def _finite_or_missing(column: pd.Series, source: str) -> np.ndarray:
    """Numbers that float32 holds, NaN where missing; inf or |x| > float32's max refused."""
    values = column.to_numpy(dtype=np.float64, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = np.isinf(values) | (np.abs(values) > FLOAT32_MAX)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{source} {where(source, row)}, column {column.name!r} holds {values[row]:g}, "
            f"beyond the float32 range (|x| <= {FLOAT32_MAX:.4g}); fix the file or drop the "
            "column."
        )
    return values.astype(np.float32)


@dataclass
class Labels:
    """Class labels <-> class numbers 0..K-1 (sorted; the binary positive class is 1)."""

    classes: list

    @classmethod
    def fit(cls, column: pd.Series, positive=None) -> Labels:
        values = column.dropna().unique().tolist()
        try:
            classes = sorted(values)
        except TypeError:  # mixed types: sort as text
            classes = sorted(values, key=str)
        classes = [v.item() if isinstance(v, np.generic) else v for v in classes]
        if positive is not None:
            match = [c for c in classes if str(c) == str(positive)]
            if not match:
                raise DataError(
                    f"positive: {positive!r} is not a class of {column.attrs.get('source', '')}"
                    f"{' ' if column.attrs.get('source') else ''}column {column.name!r} "
                    f"(classes: {', '.join(map(str, classes[:10]))})."
                )
            if len(classes) == 2:
                classes = [c for c in classes if c != match[0]] + match
        return cls(classes)

    def encode(self, column: pd.Series, source: str) -> np.ndarray:
        index = pd.Index([str(c) for c in self.classes])
        codes = index.get_indexer(column.map(str))
        if (codes < 0).any():
            row = int(np.argmax(codes < 0))
            raise DataError(f"{source} {where(source, row)}: unknown class {column.iloc[row]!r}.")
        return codes.astype(np.int64)

    def decode(self, numbers: np.ndarray) -> np.ndarray:
        return np.asarray(self.classes, dtype=object)[np.asarray(numbers, dtype=np.int64)]


def check_no_missing_target(frame: pd.DataFrame, target: str) -> None:
    """No missing targets: a row without a target cannot be trained or scored."""
    missing = frame[target].isna().to_numpy()
    if missing.any():
        source = frame.attrs["source"]
        row = int(np.argmax(missing))
        raise DataError(
            f"{source} {where(source, row)}: the target {target!r} is missing ({missing.sum()} "
            "row(s)); drop those rows or fill them in."
        )
