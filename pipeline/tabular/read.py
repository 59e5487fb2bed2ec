"""Reading competition CSV files with checks that end in one readable line.

Numbers are checked in float64, before a loader casts them to float32: `1e300` is finite in
float64 but infinite in float32, so it is refused here, naming the file, column and line.
"""

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
        # (utf-8-sig: a byte-order mark that Excel writes is not part of the first name)
        frame = pd.read_csv(
            path, low_memory=False, keep_default_na=False, na_values=[""], encoding="utf-8-sig"
        )
    except pd.errors.EmptyDataError:
        raise DataError(f"{name} is empty; download it again.") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{name} is not a readable CSV file: {exc}".splitlines()[0]) from None
    check_columns(name, [str(c) for c in frame.columns], expected)
    if frame.empty:
        raise DataError(f"{name} has a header but no rows; download it again.")
    for column in numeric if numeric is not None else expected:
        check_numeric(name, frame[column])
    frame.attrs["source"] = name  # for messages about the frame's rows (load_inputs)
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


FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_numeric(name: str, column: pd.Series) -> None:
    """Every cell a number that float32 holds: not empty, not text, not NaN or inf, and not
    beyond float32's range (which the cast to float32 would turn into inf)."""
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
            what = "is empty"
        raise DataError(
            f"{name} line {row + 2}, column {column.name!r} {what}; fix or re-download the file."
        )


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
