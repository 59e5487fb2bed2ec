"""What a submission's value columns may hold, for each format (pipeline.submission.format).

labels: the training label set (class numbers 0..K-1 for competitions without class names;
names where the competition has them, so class numbers written for names are refused); proba:
probabilities in [0, 1], not hard 0/1 labels when the metric scores probabilities; class_proba:
per-class probabilities whose rows sum to 1; values: finite numbers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipeline.errors import DataError

if TYPE_CHECKING:
    from pipeline.competition.base import Competition


@dataclass(frozen=True)
class SubmissionFormat:
    kind: str  # one of KINDS (pipeline.submission.format)
    columns: tuple[str, ...]  # the whole header, the id column first
    classes: tuple = ()  # classification: the competition's labels in class-number order
    # class_proba: the class number each value column holds; proba: (the submitted class,)
    class_of_column: tuple[int, ...] = ()

    @property
    def id_column(self) -> str:
        return self.columns[0]

    @property
    def value_columns(self) -> tuple[str, ...]:
        return self.columns[1:]


ROW_SUM_TOLERANCE = 1e-3  # CSV round-trips of float32 probabilities stay far inside this


def label_key(value) -> float | str:
    """A label as compared across files: numbers by value (1, 1.0 and "1" are one class),
    anything else as text (pandas reads True/False as booleans, a header always as text)."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return number if math.isfinite(number) else str(value)


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value


def _shown(values) -> str:
    values = list(values)
    return ", ".join(map(str, values[:6])) + (", ..." if len(values) > 6 else "")


def check_values(
    values: pd.DataFrame,
    fmt: SubmissionFormat,
    competition: Competition,
    sample: pd.DataFrame | None,
    name: str,
) -> None:
    if fmt.kind == "labels" and competition.classes is None:
        _check_class_numbers(values.iloc[:, 0], competition, name)
    elif fmt.kind == "labels":
        _check_labels(values.iloc[:, 0], fmt, sample, name)
    else:
        what = " (the probability of that class)" if fmt.kind == "class_proba" else ""
        if fmt.kind == "proba":
            what = f" (the probability of class {fmt.classes[fmt.class_of_column[0]]!r})"
        numbers = [_finite(values[c], name, what) for c in values.columns]
        if fmt.kind in ("proba", "class_proba"):
            _check_probabilities(np.column_stack(numbers), fmt, competition, name)


def _finite(values: pd.Series, name: str, what: str = "") -> np.ndarray:
    column = values.name
    numeric = pd.to_numeric(values, errors="coerce")
    as_float = numeric.to_numpy(dtype=float, na_value=np.nan)
    bad = ~np.isfinite(as_float)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{name} column {column!r} row {row + 1} holds {_plain(values.iloc[row])!r}; "
            f"every value must be a finite number{what}."
        )
    return as_float


def _check_class_numbers(values: pd.Series, competition: Competition, name: str) -> None:
    """Competitions without class names: integer class numbers 0..K-1 (as always)."""
    column = values.name
    task = competition.task
    as_float = _finite(values, name)
    if not np.all(as_float == np.round(as_float)):
        raise DataError(f"{name} column {column!r} must hold integer class ids.")
    if as_float.min() < 0 or as_float.max() >= task.n_classes:
        raise DataError(
            f"{name} column {column!r} must hold classes 0..{task.n_classes - 1}; found "
            f"{int(as_float.min())}..{int(as_float.max())}."
        )


def _check_labels(values: pd.Series, fmt, sample: pd.DataFrame | None, name: str) -> None:
    column, names = values.name, list(fmt.classes)
    keys = [label_key(n) for n in names]
    missing = values.isna().to_numpy()
    if missing.any():
        row = int(np.argmax(missing))
        raise DataError(
            f"{name} column {column!r} row {row + 1} is empty; every row needs one of the "
            f"training labels ({_shown(names)})."
        )
    got = [label_key(v) for v in values]
    known = set(keys)
    unknown = [i for i, k in enumerate(got) if k not in known]
    if not unknown:
        return
    named = [k for k in keys if isinstance(k, str)]
    numbers = [k for k in got if isinstance(k, float)]
    if (
        named
        and len(numbers) == len(got)
        and all(k.is_integer() and 0 <= k < len(names) for k in numbers)
    ):
        holders = "the sample holds" if _sample_holds_names(sample, known) else "the classes are"
        found = sorted({int(k) for k in numbers})
        raise DataError(
            f"{name} column {column!r} holds class numbers ({_shown(found)}) but {holders} "
            f"class names such as {names[0]!r}: write the labels ({_shown(names)}), not numbers."
        )
    row = unknown[0]
    value = _plain(values.iloc[row])
    raise DataError(
        f"{name} column {column!r} row {row + 1} holds {value!r}, not one of the training labels"
        f" ({_shown(names)}); {len(unknown)} row(s) hold labels outside that set."
    )


def _sample_holds_names(sample: pd.DataFrame | None, known: set) -> bool:
    if sample is None or sample.shape[1] < 2:
        return False
    return any(isinstance(k, str) and k in known for k in map(label_key, sample.iloc[:, 1]))


def _check_probabilities(p: np.ndarray, fmt, competition: Competition, name: str) -> None:
    columns = list(fmt.value_columns)
    outside = (p < 0) | (p > 1)
    if outside.any():
        row, col = (int(i[0]) for i in np.nonzero(outside))
        raise DataError(
            f"{name} column {columns[col]!r} row {row + 1} holds {p[row, col]:g}; a probability "
            "must lie in [0, 1]."
        )
    metric = competition.metric
    if metric.needs_proba and len(p) and np.isin(p, (0.0, 1.0)).all():
        if fmt.kind == "proba":
            label = fmt.classes[fmt.class_of_column[0]]
            what = f"the positive class's probability (of {label!r})"
        else:
            what = "each class's probability"
        raise DataError(
            f"{name} holds only hard 0/1 values, but {metric.name} scores probabilities: "
            f"submit {what}, not a predicted class."
        )
    if fmt.kind == "class_proba":
        sums = p.sum(axis=1)
        off = np.abs(sums - 1.0) > ROW_SUM_TOLERANCE
        if off.any():
            row = int(np.argmax(off))
            raise DataError(
                f"{name} row {row + 1} has class probabilities summing to {sums[row]:.6g}; each "
                f"row's {len(columns)} probabilities must sum to 1 (within {ROW_SUM_TOLERANCE:g})."
            )
