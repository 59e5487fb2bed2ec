"""Reading competition CSV files with checks that end in one readable line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import DataError


def read_table(path: Path, expected: list[str], numeric: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV whose header must equal `expected`; `numeric` columns must be finite numbers.

    Repeated names in a header come back with pandas' suffixes (`cli`, `cli.1`, ...), so
    `expected` uses those spellings.
    """
    name = path.name
    try:
        # only empty cells are missing; "n/a", "NaN" and other text is reported as text
        frame = pd.read_csv(path, low_memory=False, keep_default_na=False, na_values=[""])
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty; download it again.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{name} is not a readable CSV file: {exc}".splitlines()[0]) from None
    check_columns(name, [str(c) for c in frame.columns], expected)
    if frame.empty:
        raise DataError(f"{name} has a header but no rows; download it again.")
    for column in numeric if numeric is not None else expected:
        check_numeric(name, frame[column])
    return frame


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


def check_numeric(name: str, column: pd.Series) -> None:
    values = pd.to_numeric(column, errors="coerce")
    bad = values.isna().to_numpy() | ~np.isfinite(values.to_numpy(dtype=float, na_value=np.nan))
    if bad.any():
        row = int(np.argmax(bad))
        cell = column.iloc[row]
        what = "is empty" if pd.isna(cell) else f"holds {cell!r}, not a finite number"
        raise DataError(
            f"{name} line {row + 2}, column {column.name!r} {what}; fix or re-download the file."
        )


def _few(items: list[str], n: int = 5) -> str:
    shown = ", ".join(repr(i) for i in items[:n])
    return shown + (f" and {len(items) - n} more" if len(items) > n else "")
