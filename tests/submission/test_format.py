import numpy as np
import pandas as pd
import pytest

from pipeline.errors import DataError
from pipeline.submission.format import build_submission, read_submission, validate_submission


@pytest.fixture
def sample():
    return pd.DataFrame({"id": [2, 0, 1], "label": [0, 0, 0]})


def test_build_follows_the_sample_order_and_header(demo, sample):
    frame = build_submission(demo, np.array([0, 1, 2]), np.array([5, 6, 7]), sample=sample)
    assert list(frame.columns) == ["id", "label"]
    assert frame["id"].tolist() == [2, 0, 1] and frame["label"].tolist() == [7, 5, 6]


def test_a_graders_own_header_is_kept(demo):
    sample = pd.DataFrame({"Id": [0, 1], "ClassId": [0, 0]})
    frame = build_submission(demo, np.array([0, 1]), np.array([3, 4]), sample=sample)
    assert list(frame.columns) == ["Id", "ClassId"]


def test_without_a_sample_the_test_ids_decide(covid):
    frame = build_submission(covid, np.array([0, 1]), np.array([1.5, 2.5]))
    assert list(frame.columns) == ["id", "tested_positive"]


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"id": [2, 0, 1], "target": [1, 1, 1]}), r"columns \['id', 'target'\]"),
        (pd.DataFrame({"id": [2, 0], "label": [1, 1]}), "has 2 rows; expected 3"),
        (pd.DataFrame({"id": [2, 2, 1], "label": [1, 1, 1]}), "repeats id 2"),
        (pd.DataFrame({"id": [2, 0, 7], "label": [1, 1, 1]}), "lacks 1 test ids"),
        (pd.DataFrame({"id": [0, 2, 1], "label": [1, 1, 1]}), "another order"),
        (pd.DataFrame({"id": [2, 0, 1], "label": [1, "x", 1]}), "row 2 holds 'x'"),
        (pd.DataFrame({"id": [2, 0, 1], "label": [1, 1.5, 1]}), "integer class ids"),
        (pd.DataFrame({"id": [2, 0, 1], "label": [1, 10, 1]}), r"classes 0..9; found 1..10"),
    ],
)
def test_validation_catches_each_problem(demo, sample, frame, message):
    with pytest.raises(DataError, match=message):
        validate_submission(frame, demo, sample=sample)


def test_regression_values_must_be_finite(covid):
    frame = pd.DataFrame({"id": [0, 1], "tested_positive": [1.0, np.inf]})
    with pytest.raises(DataError, match="finite number"):
        validate_submission(frame, covid, test_ids=np.array([0, 1]))


def test_read_submission_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_submission(tmp_path / "nope.csv")
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="is empty"):
        read_submission(tmp_path / "empty.csv")
