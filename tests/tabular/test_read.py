"""The one CSV reader: one missing-value rule for every file (empty cells and Kaggle's markers
such as NA are missing), and a numeric check that names what a missing cell held."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import DataError
from pipeline.tabular.read import read_csv


def test_markers_and_empty_cells_are_missing_in_every_file(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("id,x,y\n1,NA,2.5\n2,,3.5\n3,n/a,4\n4,7,NaN\n")
    frame = read_csv(path, "the training data")
    assert frame["x"].isna().tolist() == [True, True, True, False]
    assert frame["x"].dtype.kind == "f" and np.isnan(frame["y"].iloc[3])
    assert frame.attrs["source"] == "train.csv"


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("NA", r"train.csv line 3, column 'x' holds 'NA', not a finite number"),
        ("", r"train.csv line 3, column 'x' is empty"),
        ("abc", r"train.csv line 3, column 'x' holds 'abc', not a finite number"),
    ],
)
def test_a_file_that_must_hold_numbers_names_the_missing_cell(tmp_path, cell, message):
    path = tmp_path / "train.csv"
    path.write_text(f"id,x\n1,0.5\n2,{cell}\n")
    with pytest.raises(DataError, match=message):
        read_csv(path, expected=["id", "x"])


def test_the_header_is_checked_against_the_expected_columns(tmp_path):
    path = tmp_path / "test.csv"
    path.write_text("id,z\n1,2\n")
    with pytest.raises(DataError, match=r"test.csv: column 'x' is missing and 'z' is unexpected"):
        read_csv(path, expected=["id", "x"])
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match=r"empty.csv \(the test data\) is empty"):
        read_csv(tmp_path / "empty.csv", "the test data")


@pytest.mark.parametrize(
    ("sep", "shown"), [(";", "';'"), ("\t", "tabs"), ("|", "'|'")], ids=["semicolon", "tab", "bar"]
)
def test_a_file_separated_by_something_else_than_commas_is_refused(tmp_path, sep, shown):
    path = tmp_path / "train.csv"
    path.write_text(sep.join(["id", "x", "y"]) + "\n" + sep.join(["1", "2.5", "a"]) + "\n")
    message = f"train.csv .* has one column named .*: its values are separated by {shown}, not "
    with pytest.raises(DataError, match=message + "commas"):
        read_csv(path, "the training data")


def test_a_column_name_given_twice_is_refused_unless_the_header_is_expected(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("id,x,y,x\n1,2,3,4\n")
    with pytest.raises(DataError, match=r"train.csv: the column name 'x' appears twice \(col"):
        read_csv(path, "the training data")
    frame = read_csv(path, expected=["id", "x", "y", "x.1"])  # a plug-in's known header (covid)
    assert list(frame.columns) == ["id", "x", "y", "x.1"]
    path.write_text("id,x,x.1\n1,2,3\n")  # a name that only looks like pandas' suffix
    assert list(read_csv(path, "the training data").columns) == ["id", "x", "x.1"]
