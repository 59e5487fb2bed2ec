"""Every input check runs before training: bad ids, numbers float32 cannot hold, bad paths, each
one line and exit 2 with no run folder left (pipeline.run.inputs, pipeline.competition.ids, pipeline.tabular.read,
pipeline.config.build's load_yaml)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pipeline.competition.ids import checked_ids
from pipeline.errors import DataError
from pipeline.tabular.read import check_numeric
from pipeline.train import main


def _edit(path, change):
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    change(frame).to_csv(path, index=False)


def _set(row, column, value):
    def change(frame):
        frame.loc[row, column] = value
        return frame

    return change


def _repeat(row):
    return lambda f: pd.concat([f, f.iloc[[row]]], ignore_index=True)


def _train(args, capsys):
    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_and_nothing_written(code, err, out_dir, message):
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert re.search(message, err), err
    assert not out_dir.exists()


def _bad_covid_file(covid_copy, tmp_path, capsys, file, change, message):
    _edit(covid_copy / file, change)
    out = tmp_path / "run"
    code, _, err = _train(["covid", "--data-dir", covid_copy, "--out", out], capsys)
    assert_one_line_and_nothing_written(code, err, out, re.escape(file) + " " + message)


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        ("covid.train.csv", _repeat(4), r"line 2,702 repeats id 4 of line 6 \(column 'id'\)"),
        ("covid.test.csv", _repeat(0), r"line 895 repeats id 0 of line 2"),
        ("sampleSubmission.csv", _set(3, "id", "2"), r"line 5 repeats id 2 of line 4"),
        (
            "sampleSubmission.csv",
            _set(7, "id", "5000"),
            r"line 9 has id 5000, which covid.test.csv does not hold",
        ),
        (
            "sampleSubmission.csv",
            lambda f: f.drop(index=10),
            r"lacks id 10 of covid.test.csv line 12",
        ),
    ],
)
def test_bad_ids_are_found_before_training(covid_copy, tmp_path, capsys, file, change, message):
    _bad_covid_file(covid_copy, tmp_path, capsys, file, change, message)


@pytest.mark.parametrize(
    ("file", "row", "column", "value", "holds"),
    [
        ("covid.train.csv", 6, "cli", "1e300", r"1e\+300, beyond the float32 range"),
        ("covid.test.csv", 2, "shop.1", "3.5e38", r"3.5e\+38, beyond the float32 range"),
        ("covid.train.csv", 0, "tested_positive.2", "-3.5e38", r"-3.5e\+38, beyond the float32"),
        ("covid.test.csv", 5, "ili", "inf", r"'?inf'?, not a finite number"),
        ("covid.train.csv", 1, "ili", "NaN", r"'?(NaN|nan)'?, not a finite"),
        ("covid.test.csv", 1, "id", "1.5", r"1.5; ids must be"),
    ],
)
def test_bad_cells_are_found_before_training(
    covid_copy, tmp_path, capsys, file, row, column, value, holds
):
    """The message names the file, its line (the header is line 1), the column and the value."""
    message = rf"line {row + 2}, column '{re.escape(column)}' holds {holds}"
    _bad_covid_file(covid_copy, tmp_path, capsys, file, _set(row, column, value), message)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2.5", r"train.csv line 4, column 'label' holds 2.5; expected a class number 0..9"),
        ("10", r"holds 10; expected a class number 0..9"),
        ("-1", r"holds -1; expected a class number"),
    ],
)
def test_demo_labels_must_be_classes(demo_dir, tmp_path, capsys, value, message):
    data = tmp_path / "demo"
    data.mkdir()
    for name in ("train.csv", "test.csv", "sample_submission.csv"):
        (data / name).write_bytes((demo_dir / name).read_bytes())
    _edit(data / "train.csv", _set(2, "label", value))
    out = tmp_path / "run"
    code, _, err = _train(["demo", "--data-dir", data, "--out", out], capsys)
    assert_one_line_and_nothing_written(code, err, out, message)


def test_whole_float_ids_are_ids_and_float32_limits_pass():
    assert checked_ids(np.array([3.0, 1.0]), "t.csv", "id").dtype == np.int64
    check_numeric("t.csv", pd.Series(["3.4e38", "-3.4e38", "1e-300"], name="x"))
    with pytest.raises(DataError, match=r"line 3, column 'x' holds '3.5e38', beyond the float32"):
        check_numeric("t.csv", pd.Series(["1", "3.5e38"], name="x"))


def test_a_byte_order_mark_is_not_part_of_the_first_column(covid, covid_copy):
    path = covid_copy / "covid.test.csv"
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert len(covid.load_test(covid_copy).ids) == 893


# -- config files ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "message"),
    [
        (lambda tmp: tmp, r"Config file .* is a folder; give the path of a YAML file"),
        (lambda tmp: "/dev/null", r"Config file /dev/null is not a regular file"),
        (
            lambda tmp: _write(
                tmp / "c.yaml", "model:\n  dropout: 0.1 # caf\xe9\n".encode("latin-1")
            ),
            r"c.yaml is not UTF-8 text \(byte 27\); save it as UTF-8 YAML",
        ),
        (
            lambda tmp: _write(tmp / "c.yaml", b"model: [unclosed\n"),
            r"is not valid YAML at line 2",
        ),
        (
            lambda tmp: _write(tmp / "c.yaml", b"- a\n- b\n"),
            r"must hold a mapping of config keys \(key: value lines\); it holds a list",
        ),
        (lambda tmp: _write(tmp / "c.yaml", b"1: 2\n"), r"Unknown config key '1'"),
    ],
)
def test_config_paths_that_are_not_yaml_files(covid_dir, tmp_path, capsys, config, message):
    out = tmp_path / "run"
    args = ["covid", "--data-dir", covid_dir, "--out", out, "--config", config(tmp_path)]
    code, _, err = _train(args, capsys)
    assert_one_line_and_nothing_written(code, err, out, message)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path
