"""The one reader of competition CSV files, with checks that end in one readable line: plug-ins
(covid, demo) and competition.yaml competitions read their files through read_csv.

Numbers are checked in float64, before a loader casts them to float32: `1e300` is finite in
float64 but infinite in float32, so it is refused here, naming the file, column and line.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import DataError


def read_csv(
    path: Path, what: str = "", expected: list[str] | None = None, numeric: list[str] | None = None
) -> pd.DataFrame:
    """Read a competition's CSV file: column names as text, `source` in the frame's attrs.

    One missing-value rule for every file: empty cells and the markers Kaggle files use (NA,
    NaN, null, n/a, ... : pandas' defaults) are missing. `expected`: the header must equal it
    (repeated names come back with pandas' suffixes, `cli`, `cli.1`, ...); without it every
    column needs a name of its own. `numeric`: those columns (default: all of `expected`) must
    hold finite numbers in every row. A file whose values are separated by `;`, tabs or `|`
    instead of commas is refused, naming the separator.
    """
    name = path.name
    about = f" ({what})" if what else ""
    try:  # utf-8-sig: a byte-order mark that Excel writes is not part of the first name
        frame = pd.read_csv(path, low_memory=False, encoding="utf-8-sig")
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}{about} is empty; download it again.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{name} is not a readable CSV file: {exc}".splitlines()[0]) from None
    frame.columns = [str(c) for c in frame.columns]
    check_separator(name, about, list(frame.columns))
    if expected is not None:
        check_columns(name, list(frame.columns), expected)
    else:
        check_unique_names(path, name)
    if frame.empty:
        raise DataError(f"{name}{about} has a header but no rows; download it again.")
    frame.attrs["source"] = name  # for messages about the frame's rows
    for column in (numeric if numeric is not None else expected) or []:
        check_numeric(name, frame[column], path)
    return frame


SEPARATORS = {";": "';'", "\t": "tabs", "|": "'|'"}


def check_separator(name: str, about: str, columns: list[str]) -> None:
    """One column whose name holds another separator: the file is not comma-separated."""
    if len(columns) != 1:
        return
    for sep, shown in SEPARATORS.items():
        if sep in columns[0]:
            raise DataError(
                f"{name}{about} has one column named {_cut(columns[0])!r}: its values are "
                f"separated by {shown}, not commas; save it as a comma-separated file, as "
                "Kaggle's are."
            )


def check_unique_names(path: Path, name: str) -> None:
    """Each header name once: pandas would rename a second `x` to `x.1` without a word."""
    try:
        names = pd.read_csv(
            path, nrows=1, header=None, encoding="utf-8-sig", dtype=str, keep_default_na=False
        ).iloc[0]
    except (IndexError, pd.errors.ParserError, pd.errors.EmptyDataError):
        return
    seen: dict[str, int] = {}
    for i, column in enumerate(str(n) for n in names):
        if column in seen:
            raise DataError(
                f"{name}: the column name {column!r} appears twice (columns {seen[column] + 1} "
                f"and {i + 1}); give each column a name of its own."
            )
        seen[column] = i


def _cut(text: str, n: int = 40) -> str:
    return text if len(text) <= n else text[:n] + "..."


def check_columns(name: str, got: list[str], expected: list[str]) -> None:
    if got == expected:
        return
    missing = [c for c in expected if c not in got]
    extra = [c for c in got if c not in expected]
    if len(missing) == 1 and len(extra) == 1:
        raise DataError(
            f"{name}: column {missing[0]!r} is missing and {extra[0]!r} is unexpected "
            f"(renamed?); expected the {len(expected)} columns of the competition's file."
        )
    parts = []
    if missing:
        parts.append(f"missing column(s) {_few(missing)}")
    if extra:
        parts.append(f"unexpected column(s) {_few(extra)}")
    if not parts:
        first = next(i for i, (a, b) in enumerate(zip(got, expected)) if a != b)
        parts.append(
            f"columns out of order (position {first + 1} is {got[first]!r}, "
            f"expected {expected[first]!r})"
        )
    raise DataError(f"{name}: {'; '.join(parts)}.")


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_numeric(name: str, column: pd.Series, path: Path | None = None) -> None:
    """Every cell a number that float32 holds: not empty, not text, not NaN or inf, and not
    beyond float32's range (which the cast to float32 would turn into inf). `path`: the file
    the column was read from, to show what a missing cell held (empty, or a marker like n/a)."""
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    with np.errstate(invalid="ignore"):
        bad = ~np.isfinite(values) | (np.abs(values) > FLOAT32_MAX)
    if bad.any():
        row = int(np.argmax(bad))
        cell = column.iloc[row]
        if isinstance(cell, str) or not pd.isna(cell):
            shown = repr(cell) if isinstance(cell, str) else f"{float(cell):g}"
            beyond = np.isfinite(values[row])
            what = f"holds {shown}, " + (
                f"beyond the float32 range (|x| <= {FLOAT32_MAX:.4g})"
                if beyond
                else "not a finite number"
            )
        else:
            text = _cell_text(path, column, row) if path is not None else ""
            what = f"holds {text!r}, not a finite number" if text.strip() else "is empty"
        raise DataError(
            f"{name} line {row + 2}, column {column.name!r} {what}; fix or re-download the file."
        )


def _cell_text(path: Path, column: pd.Series, row: int) -> str:
    """The text of one cell as the file holds it (a missing-value marker, or nothing)."""
    try:
        header = pd.read_csv(path, nrows=0, encoding="utf-8-sig").columns
        position = [str(c) for c in header].index(str(column.name))
        cell = pd.read_csv(
            path,
            usecols=[position],
            dtype=str,
            keep_default_na=False,
            skiprows=range(1, row + 1),
            nrows=1,
            encoding="utf-8-sig",
        )
        return str(cell.iloc[0, 0])
    except (ValueError, IndexError, OSError, pd.errors.ParserError):
        return ""


def class_labels(name: str, column: pd.Series, n_classes: int) -> np.ndarray:
    """A checked numeric column of class numbers 0..n_classes-1, as int64."""
    values = column.to_numpy(dtype=float)
    bad = (values != np.round(values)) | (values < 0) | (values >= n_classes)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{name} line {row + 2}, column {column.name!r} holds {values[row]:g}; "
            f"expected a class number 0..{n_classes - 1}."
        )
    return values.astype(np.int64)


def _few(items: list[str], n: int = 5) -> str:
    shown = ", ".join(repr(i) for i in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")
