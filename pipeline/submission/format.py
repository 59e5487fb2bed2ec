"""Build, validate and write submissions.

The format comes from the task, the metric and the sample submission (`submission_format`):
values (regression), labels (the competition's own class labels), proba (one column: the
positive class's probability, for a binary task scored on probabilities) or class_proba (one
probability column per class, in the sample's column order). The header, id set and id order come
from the sample when there is one (so a grader's own header such as `Id,ClassId` is kept),
otherwise from the competition's id and target columns and the test ids. Validation checks header,
row count, ids (set, order, duplicates) and what the value columns hold, and runs both when
writing and before sending a file to Kaggle (`check_file`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition.base import Competition
from pipeline.errors import DataError
from pipeline.io import write_csv
from pipeline.submission.checks import SubmissionFormat, check_values, label_key

KINDS = ("values", "labels", "proba", "class_proba")


def _listing(items) -> str:
    items = [str(i) for i in items]
    return ", ".join(items[:8]) + (f", ... ({len(items)} in all)" if len(items) > 8 else "")


def submission_format(competition: Competition, sample: pd.DataFrame | None) -> SubmissionFormat:
    """What a submission holds; DataError (one line) for a sample that fits neither the target
    nor the classes, or that cannot carry what the metric scores."""
    task, metric = competition.task, competition.metric
    if not task.is_classification:
        columns = _columns(competition, sample, "values")
        return SubmissionFormat("values", columns)
    names = tuple(competition.class_names())
    if sample is None:
        if metric.needs_proba and not task.is_binary:
            columns = (competition.id_column, *(str(n) for n in names))
            return SubmissionFormat("class_proba", columns, names, tuple(range(len(names))))
        kind = "proba" if metric.needs_proba else "labels"
        columns = (competition.id_column, competition.target_column)
        return SubmissionFormat(kind, columns, names, (1,) if kind == "proba" else ())
    columns = _columns(competition, sample, "classes")
    keys = [label_key(n) for n in names]
    values = columns[1:]
    if len(values) > 1:
        return SubmissionFormat(
            "class_proba",
            columns,
            names,
            _class_columns(sample, values, names, competition.target_column),
        )
    if not metric.needs_proba:
        return SubmissionFormat("labels", columns, names)
    if not task.is_binary:
        raise DataError(
            f"{_source(sample)} has columns {list(columns)}, but {metric.name} scores class "
            f"probabilities: it needs one column per class ({_listing(names)}) after the id."
        )
    # a sample whose one column is named after a class asks for that class's probability
    key = label_key(values[0])
    named = values[0] != competition.target_column and key in keys
    return SubmissionFormat("proba", columns, names, (keys.index(key) if named else 1,))


def _source(sample: pd.DataFrame) -> str:
    return sample.attrs.get("source", "The sample submission")


def _columns(competition: Competition, sample: pd.DataFrame | None, what: str) -> tuple[str, ...]:
    if sample is None:
        return (competition.id_column, competition.target_column)
    columns = tuple(str(c) for c in sample.columns)
    target = competition.target_column
    if len(columns) < 2 or (what == "values" and len(columns) > 2):
        expected = f"the target {target!r}" + (
            " or one column per class" if what == "classes" else " (one value per row)"
        )
        raise DataError(
            f"{_source(sample)} has columns {list(columns)}; expected an id column and {expected}."
        )
    return columns


def _class_columns(
    sample: pd.DataFrame, values: tuple[str, ...], names: tuple, target: str
) -> tuple:
    """The class number of each per-class column; DataError unless they are exactly the classes."""
    keys = [label_key(n) for n in names]
    got = [label_key(v) for v in values]
    unseen = [v for v, k in zip(values, got) if k not in keys]
    if unseen and len(unseen) < len(values):
        raise DataError(
            f"{_source(sample)} has class column(s) {_listing(unseen)} never seen in train "
            f"(the training labels: {_listing(names)})."
        )
    if unseen:
        raise DataError(
            f"{_source(sample)} has columns {list(values)} after the id; they match neither "
            f"the target nor the classes (expected the target {target!r} or one column per "
            f"class: {_listing(names)})."
        )
    lacking = [n for n, k in zip(names, keys) if k not in got]
    if lacking or len(set(got)) < len(got):
        raise DataError(
            f"{_source(sample)} has columns {list(values)} after the id; expected exactly one "
            f"column per class ({_listing(names)})"
            + (f", lacking {_listing(lacking)}." if lacking else ", each once.")
        )
    return tuple(keys.index(k) for k in got)


def _value_columns(fmt: SubmissionFormat, pred: np.ndarray, n_classes: int) -> list[np.ndarray]:
    """The prediction space ((n, K) probabilities or (n,) values; (n,) class numbers for
    labels) -> the value columns of the format."""
    if fmt.kind == "values":
        return [pred.reshape(len(pred)) if pred.ndim == 2 and pred.shape[1] == 1 else pred]
    if fmt.kind == "labels":
        if pred.ndim == 2:
            numbers = pred.argmax(axis=1)
        elif np.issubdtype(pred.dtype, np.number) and np.all(pred == np.round(pred)):
            numbers = pred.astype(np.int64)
        else:
            raise DataError("Labels need (n, classes) probabilities or integer class numbers.")
        if numbers.size and (numbers.min() < 0 or numbers.max() >= n_classes):
            return [numbers]  # the validator names the range
        return [numbers if _numbers_are_labels(fmt) else np.asarray(fmt.classes, object)[numbers]]
    if pred.ndim != 2 or pred.shape[1] != n_classes:
        raise DataError(
            f"A {fmt.kind} submission needs (n, {n_classes}) class probabilities; the "
            f"predictions have shape {pred.shape} (post-processing gives labels: turn it off)."
        )
    return [pred[:, k] for k in fmt.class_of_column]


def _numbers_are_labels(fmt: SubmissionFormat) -> bool:
    """The labels are the class numbers themselves (False == 0 in Python: booleans are not)."""
    plain = not any(isinstance(c, (bool, np.bool_)) for c in fmt.classes)
    return plain and list(fmt.classes) == list(range(len(fmt.classes)))


def build_submission(
    competition: Competition,
    test_ids: np.ndarray,
    pred: np.ndarray,
    sample: pd.DataFrame | None = None,
    fmt: SubmissionFormat | None = None,
) -> pd.DataFrame:
    """Submission frame in the sample's id order (or the test order when there is no sample)."""
    fmt = fmt or submission_format(competition, sample)
    if fmt.kind == "values":  # the model's target scale back to the competition's (rmsle)
        pred = competition.to_target_scale(np.asarray(pred))
    columns = _value_columns(fmt, np.asarray(pred), competition.task.n_classes)
    frame = pd.DataFrame({fmt.id_column: np.asarray(test_ids)})
    for column, values in zip(fmt.value_columns, columns):
        frame[column] = values
    id_col = fmt.id_column
    if sample is not None and len(sample) == len(frame):
        order = pd.Index(frame[id_col].astype(str))
        wanted = sample.iloc[:, 0].astype(str)
        if set(order) == set(wanted) and order.is_unique:
            frame = frame.iloc[order.get_indexer(wanted)].reset_index(drop=True)
    validate_submission(frame, competition, sample=sample, test_ids=test_ids, fmt=fmt)
    return frame


def validate_submission(
    frame: pd.DataFrame,
    competition: Competition,
    sample: pd.DataFrame | None = None,
    test_ids: np.ndarray | None = None,
    name: str = "The submission",
    fmt: SubmissionFormat | None = None,
) -> None:
    """Raise DataError with one readable line for the first problem found."""
    fmt = fmt or submission_format(competition, sample)
    columns = list(fmt.columns)
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
    check_values(frame.iloc[:, 1:], fmt, competition, sample, name)


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
    fmt = submission_format(competition, sample)
    test_ids = competition.load_test(data_dir).ids if sample is None else None
    validate_submission(
        frame, competition, sample=sample, test_ids=test_ids, name=str(file), fmt=fmt
    )
    return frame
