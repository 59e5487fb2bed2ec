"""Row ids, checked when the inputs are loaded: unique in the train file, the test file and the
sample submission, and the same set in the test file and the sample (the submission is built
from the one in the order of the other), so that no fold trains on inputs the end refuses.

Ids are compared as text, as pipeline.submission.format compares them (as ints when all are ints:
the same answer, faster).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.errors import DataError


def where(source: str, row: int) -> str:
    """'line 7' of a CSV file (its header is line 1), 'row 6' of an array file."""
    return f"line {row + 2:,}" if source.endswith(".csv") else f"row {row + 1:,}"


def checked_ids(ids: np.ndarray, source: str, column: str) -> np.ndarray:
    """`ids` without repeats; numbers that pandas read as floats must be whole (then int64)."""
    ids = np.asarray(ids)
    if ids.dtype.kind == "f":
        whole = (ids == np.round(ids)) & (np.abs(ids) < 2.0**53)  # exact as int64
        if not whole.all():
            row = int(np.argmax(~whole))
            raise DataError(
                f"{source} {where(source, row)}, column {column!r} holds {ids[row]:g}; ids must "
                "be whole numbers or text. Fix or re-download the file."
            )
        ids = ids.astype(np.int64)
    (keys,) = _keys(ids)
    repeated = pd.Series(keys).duplicated(keep=False).to_numpy()
    if repeated.any():
        first = int(np.argmax(repeated))
        again = first + 1 + int(np.argmax(keys[first + 1 :] == keys[first]))
        raise DataError(
            f"{source} {where(source, again)} repeats id {keys[first]} of "
            f"{where(source, first)} (column {column!r}); each id must appear once. Fix or "
            "re-download the file."
        )
    return ids


def _keys(*columns: np.ndarray) -> list[np.ndarray]:
    """The columns as ints when all are ints (fast on TIMIT's million rows), else as text."""
    arrays = [np.asarray(c) for c in columns]
    if all(a.dtype.kind in "iu" for a in arrays):
        return arrays
    return [pd.Series(a).astype(str).to_numpy() for a in arrays]


def check_same_ids(test_ids: np.ndarray, test_source: str, sample: pd.DataFrame) -> None:
    """The sample submission lists exactly the test file's ids (in any order)."""
    source = sample.attrs.get("source", "the sample submission")
    test, listed = _keys(test_ids, sample.iloc[:, 0].to_numpy())
    extra, missing = ~np.isin(listed, test), ~np.isin(test, listed)
    if extra.any():
        row = int(np.argmax(extra))
        problem = (
            f"{source} {where(source, row)} has id {listed[row]}, which {test_source} does not "
            f"hold ({int(extra.sum())} such ids)"
        )
    elif missing.any():
        row = int(np.argmax(missing))
        problem = (
            f"{source} lacks id {test[row]} of {test_source} {where(test_source, row)} "
            f"({int(missing.sum())} ids missing)"
        )
    else:
        return
    raise DataError(
        f"{problem}; both must list the same ids: download the competition files again."
    )
