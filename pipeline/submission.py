"""Build, validate and write submissions.

The header, id set and id order come from the competition's sample submission when it has one
(so a grader's own header such as `Id,ClassId` is kept), otherwise from the competition's id and
target columns and the test ids. Validation checks header, row count, ids (set, order,
duplicates) and value types, and runs both when writing and before sending a file to Kaggle.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition import Competition
from pipeline.errors import DataError
from pipeline.io import write_csv


def expected_columns(competition: Competition, sample: pd.DataFrame | None) -> list[str]:
    if sample is not None:
        return [str(c) for c in sample.columns]
    return [competition.id_column, competition.target_column]


def build_submission(
    competition: Competition,
    test_ids: np.ndarray,
    values: np.ndarray,
    sample: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Submission frame in the sample's id order (or the test order when there is no sample)."""
    id_col, value_col = expected_columns(competition, sample)
    frame = pd.DataFrame({id_col: np.asarray(test_ids), value_col: np.asarray(values)})
    if sample is not None and len(sample) == len(frame):
        order = pd.Index(frame[id_col].astype(str))
        wanted = sample.iloc[:, 0].astype(str)
        if set(order) == set(wanted) and order.is_unique:
            frame = frame.iloc[order.get_indexer(wanted)].reset_index(drop=True)
    validate_submission(frame, competition, sample=sample, test_ids=test_ids)
    return frame


def validate_submission(
    frame: pd.DataFrame,
    competition: Competition,
    sample: pd.DataFrame | None = None,
    test_ids: np.ndarray | None = None,
    name: str = "The submission",
) -> None:
    """Raise DataError with one readable line for the first problem found."""
    columns = expected_columns(competition, sample)
    got = [str(c) for c in frame.columns]
    if got != columns:
        raise DataError(f"{name} has columns {got}; expected exactly {columns}.")
    reference = sample.iloc[:, 0] if sample is not None else test_ids
    if reference is None:
        raise DataError("Cannot validate a submission without a sample submission or test ids.")
    reference = pd.Series(np.asarray(reference)).astype(str)
    ids = frame.iloc[:, 0].astype(str)
    if len(frame) != len(reference):
        raise DataError(f"{name} has {len(frame)} rows; expected {len(reference)}.")
    if ids.duplicated().any():
        dup = ids[ids.duplicated()].iloc[0]
        raise DataError(f"{name} repeats id {dup}; each test id must appear once.")
    missing = set(reference) - set(ids)
    if missing:
        example = sorted(missing)[:3]
        raise DataError(f"{name} lacks {len(missing)} test ids (e.g. {', '.join(example)}).")
    if not (ids.to_numpy() == reference.to_numpy()).all():
        first = int(np.argmax(ids.to_numpy() != reference.to_numpy()))
        raise DataError(
            f"{name} lists the ids in another order than expected (row {first + 1} has id "
            f"{ids.iloc[first]}, expected {reference.iloc[first]})."
        )
    _check_values(frame.iloc[:, 1], competition, name)


def _check_values(values: pd.Series, competition: Competition, name: str) -> None:
    column = values.name
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | ~np.isfinite(numeric.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = int(np.argmax(bad.to_numpy()))
        raise DataError(
            f"{name} column {column!r} row {row + 1} holds {values.iloc[row]!r}; "
            "every value must be a finite number."
        )
    task = competition.task
    if task.is_classification:
        as_float = numeric.to_numpy(dtype=float)
        if not np.all(as_float == np.round(as_float)):
            raise DataError(f"{name} column {column!r} must hold integer class ids.")
        if as_float.min() < 0 or as_float.max() >= task.n_classes:
            raise DataError(
                f"{name} column {column!r} must hold classes 0..{task.n_classes - 1}; found "
                f"{int(as_float.min())}..{int(as_float.max())}."
            )


def read_submission(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist.")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path} is empty.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a readable CSV file ({exc}).") from None


def write_submission(path: str | Path, frame: pd.DataFrame) -> Path:
    return write_csv(path, frame)


def check_file(competition: Competition, file: Path, data_dir: Path) -> pd.DataFrame:
    """Read and validate a submission exactly as the writer does; DataError on a problem."""
    frame = read_submission(file)
    competition.prepare_data(data_dir)
    sample = competition.load_sample_submission(data_dir)
    test_ids = competition.load_test(data_dir).ids if sample is None else None
    validate_submission(frame, competition, sample=sample, test_ids=test_ids, name=str(file))
    return frame
