"""Submission formats from the task, the metric and the sample (pipeline/submission/format.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.competition import base as plugin
from pipeline.competition.base import Competition
from pipeline.errors import DataError
from pipeline.model.metrics import Metric, Task, get_metric
from pipeline.submission.format import (
    build_submission,
    check_file,
    submission_format,
    validate_submission,
    write_submission,
)

PENGUINS = ["Adelie", "Chinstrap", "Gentoo"]
# stand-ins that score probabilities; the formats look only at needs_proba
AUC = Metric("auc", lambda y, p: 0.5, True, needs_proba=True)
LOGLOSS = Metric("logloss", lambda y, p: 0.0, False, needs_proba=True)


def fake(classes=None, metric=None, task=None, target="target") -> Competition:
    """A competition whose test ids and sample submission are CSVs in the data folder."""
    if task is None:
        task = Task("classification", len(classes)) if classes else Task("regression")

    def load_test(self, data_dir: Path) -> plugin.TestData:
        ids = pd.read_csv(Path(data_dir) / "test.csv")["id"].to_numpy()
        return plugin.TestData(X=np.zeros((len(ids), 1), np.float32), ids=ids)

    def load_sample_submission(self, data_dir: Path) -> pd.DataFrame | None:
        path = Path(data_dir) / "sample_submission.csv"
        return pd.read_csv(path) if path.is_file() else None

    attrs = dict(
        name="fake",
        task=task,
        classes=classes,
        target_column=target,
        metric=metric or get_metric("accuracy" if task.is_classification else "rmse"),
        load_test=load_test,
        load_sample_submission=load_sample_submission,
    )
    return type("Fake", (Competition,), attrs)()


IDS = np.array(["p3", "p1", "p2"])  # the test file's order; the samples list p1, p2, p3


def sample(*columns, values=None) -> pd.DataFrame:
    frame = pd.DataFrame({"id": ["p1", "p2", "p3"]})
    for column in columns:
        frame[column] = values if values is not None else 0.5
    return frame


PROBA = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])  # rows of p3, p1, p2


# -- which format -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("competition", "frame", "kind", "columns"),
    [
        (fake(PENGUINS), sample("species", values="Adelie"), "labels", ("id", "species")),
        (fake(PENGUINS, LOGLOSS), sample(*PENGUINS), "class_proba", ("id", *PENGUINS)),
        (fake(PENGUINS), sample("Gentoo", "Adelie", "Chinstrap"), "class_proba", None),
        (fake(["no", "yes"], AUC), sample("target"), "proba", ("id", "target")),
        (fake([0, 1], AUC), sample("Transported"), "proba", ("id", "Transported")),
        (fake(["no", "yes"]), sample("target", values="no"), "labels", ("id", "target")),
        (fake([0, 1], AUC), sample("0", "1"), "class_proba", ("id", "0", "1")),
        (fake(), sample("price"), "values", ("id", "price")),
        (fake(PENGUINS), None, "labels", ("id", "target")),
        (fake(PENGUINS, LOGLOSS), None, "class_proba", ("id", *PENGUINS)),
        (fake(["no", "yes"], AUC), None, "proba", ("id", "target")),
        (fake(), None, "values", ("id", "target")),
    ],
)
def test_the_format_follows_the_task_metric_and_sample(competition, frame, kind, columns):
    fmt = submission_format(competition, frame)
    assert fmt.kind == kind
    if columns is not None:
        assert fmt.columns == columns


def test_per_class_columns_keep_the_samples_order():
    competition = fake(PENGUINS, LOGLOSS)
    frame = sample("Gentoo", "Adelie", "Chinstrap")  # used to crash: "too many values to unpack"
    sub = build_submission(competition, IDS, PROBA, sample=frame)
    assert list(sub.columns) == ["id", "Gentoo", "Adelie", "Chinstrap"]
    assert sub["id"].tolist() == ["p1", "p2", "p3"]
    np.testing.assert_allclose(sub.iloc[:, 1:].to_numpy(float), PROBA[[1, 2, 0]][:, [2, 0, 1]])


def test_a_binary_sample_named_after_a_class_gets_that_class_probability():
    competition = fake(["no", "yes"], AUC)
    proba = np.array([[0.9, 0.1], [0.3, 0.7], [0.4, 0.6]])
    assert build_submission(competition, IDS, proba, sample("target"))["target"].tolist() == [
        0.7,
        0.6,
        0.1,
    ]
    assert build_submission(competition, IDS, proba, sample("no"))["no"].tolist() == [
        0.3,
        0.4,
        0.9,
    ]


def test_labels_are_the_competitions_own_names_from_probabilities_or_class_numbers():
    competition, frame = fake(PENGUINS), sample("species", values="Adelie")
    assert build_submission(competition, IDS, PROBA, frame)["species"].tolist() == [
        "Chinstrap",
        "Gentoo",
        "Adelie",
    ]
    viterbi = np.array([2, 2, 1])  # post-processed class numbers, rows of p3, p1, p2
    assert build_submission(competition, IDS, viterbi, frame)["species"].tolist() == [
        "Gentoo",
        "Chinstrap",
        "Gentoo",
    ]


# -- the two wrong files of the issue, and their correct versions -------------------------------
def write(folder: Path, competition_sample: pd.DataFrame, file: pd.DataFrame) -> Path:
    folder.mkdir(exist_ok=True)
    competition_sample.to_csv(folder / "sample_submission.csv", index=False)
    pd.DataFrame({"id": IDS}).to_csv(folder / "test.csv", index=False)
    return write_submission(folder / "submission.csv", file)


def test_class_numbers_where_the_sample_holds_names_are_refused(tmp_path):
    competition, frame = fake(PENGUINS), sample("species", values="Adelie")
    wrong = pd.DataFrame({"id": ["p1", "p2", "p3"], "species": [0, 1, 2]})
    path = write(tmp_path, frame, wrong)
    with pytest.raises(
        DataError,
        match="holds class numbers .0, 1, 2. but the sample holds class names such as 'Adelie'",
    ):
        check_file(competition, path, tmp_path)
    right = build_submission(competition, IDS, PROBA, frame)
    check_file(competition, write(tmp_path, frame, right), tmp_path)


def test_hard_labels_where_auc_needs_probabilities_are_refused(tmp_path):
    competition, frame = fake(["no", "yes"], AUC), sample("target")
    wrong = pd.DataFrame({"id": ["p1", "p2", "p3"], "target": [1, 0, 1]})
    with pytest.raises(
        DataError,
        match="only hard 0/1 values, but auc scores probabilities: "
        "submit the positive class's probability .of 'yes'.",
    ):
        check_file(competition, write(tmp_path, frame, wrong), tmp_path)
    right = build_submission(
        competition, IDS, np.array([[0.9, 0.1], [0.3, 0.7], [0.4, 0.6]]), frame
    )
    check_file(competition, write(tmp_path, frame, right), tmp_path)


def test_string_ids_bool_labels_and_per_class_files_round_trip_through_csv(tmp_path):
    binary, frame = fake([False, True]), sample("target", values=True)
    labels = build_submission(binary, IDS, np.array([[0.9, 0.1], [0.3, 0.7], [0.4, 0.6]]), frame)
    assert labels["target"].tolist() == [True, True, False]
    check_file(binary, write(tmp_path / "a", frame, labels), tmp_path / "a")
    assert pd.read_csv(tmp_path / "a" / "submission.csv")["target"].dtype == bool
    multi, frame = fake(PENGUINS, LOGLOSS), sample("Gentoo", "Adelie", "Chinstrap")
    per_class = build_submission(multi, IDS, PROBA.astype(np.float32), frame)
    check_file(multi, write(tmp_path / "b", frame, per_class), tmp_path / "b")


# -- what a file holds --------------------------------------------------------------------------
PER_CLASS = fake(PENGUINS, LOGLOSS)
BINARY = fake(["no", "yes"], AUC)


@pytest.mark.parametrize(
    ("competition", "frame", "file", "message"),
    [
        (
            fake(PENGUINS),
            sample("species", values="Adelie"),
            {"species": ["Adelie", "Emperor", "Gentoo"]},
            "row 2 holds 'Emperor', not one of the training labels .Adelie, Chinstrap, Gentoo.",
        ),
        (
            fake(PENGUINS),
            sample("species"),
            {"species": ["Adelie", None, "Gentoo"]},
            "row 2 is empty",
        ),
        (
            fake(PENGUINS),
            sample("species", values=0),
            {"species": [0, 1, 2]},
            "class numbers .0, 1, 2. but the classes are class names",
        ),
        (fake([1, 2, 3]), sample("y", values=1), {"y": [1, 2, 4]}, "row 3 holds 4"),
        (BINARY, sample("target"), {"target": [0.2, 1.5, 0.3]}, "row 2 holds 1.5; a probability"),
        (BINARY, sample("target"), {"target": [0.2, "yes", 0.3]}, "probability of class 'yes'"),
        (
            PER_CLASS,
            sample(*PENGUINS),
            {"Adelie": [0.2, 0.5, 0.3], "Chinstrap": [0.3, 0.5, 0.3], "Gentoo": [0.5, 0.2, 0.4]},
            "row 2 has class probabilities summing to 1.2",
        ),
        (
            PER_CLASS,
            sample(*PENGUINS),
            {"Adelie": [1, 0, 0], "Chinstrap": [0, 1, 0], "Gentoo": [0, 0, 1]},
            "only hard 0/1 values, but logloss scores probabilities",
        ),
        (
            PER_CLASS,
            sample(*PENGUINS),
            {"Adelie": [0.2, 0.5, 0.3], "Gentoo": [0.5, 0.2, 0.4], "Chinstrap": [0.3, 0.3, 0.3]},
            "has columns .'id', 'Adelie', 'Gentoo'",
        ),
        (fake(), sample("price"), {"price": [1.0, np.nan, 2.0]}, "finite number"),
    ],
)
def test_validation_compares_the_values_with_the_format(competition, frame, file, message):
    file = pd.DataFrame({"id": ["p1", "p2", "p3"], **file})
    with pytest.raises(DataError, match=message):
        validate_submission(file, competition, sample=frame)


def test_per_class_rows_within_the_tolerance_pass():
    file = pd.DataFrame(
        {
            "id": ["p1", "p2", "p3"],
            "Adelie": [0.2, 0.5, 0.3],
            "Chinstrap": [0.3, 0.3, 0.3],
            "Gentoo": [0.5, 0.2, 0.4004],
        }
    )
    validate_submission(file, PER_CLASS, sample=sample(*PENGUINS))


# -- samples refused when the format is decided (load time) -------------------------------------
@pytest.mark.parametrize(
    ("competition", "frame", "message"),
    [
        (
            fake(PENGUINS),
            sample("a", "b", "c"),
            r"columns \['a', 'b', 'c'\] after the id; they "
            "match neither the target nor the classes",
        ),
        (
            fake(PENGUINS, LOGLOSS),
            sample(*PENGUINS, "Emperor"),
            "class column.s. Emperor never seen in train",
        ),
        (fake(PENGUINS, LOGLOSS), sample("Adelie", "Gentoo"), "lacking Chinstrap"),
        (
            fake(PENGUINS, LOGLOSS),
            sample("species"),
            "logloss scores class probabilities: it "
            "needs one column per class .Adelie, Chinstrap, Gentoo.",
        ),
        (fake(), sample("price", "other"), r"expected an id column and the target 'target'"),
        (fake(PENGUINS), pd.DataFrame({"id": [1]}), "expected an id column"),
    ],
)
def test_samples_that_fit_neither_target_nor_classes_are_refused(competition, frame, message):
    with pytest.raises(DataError, match=message):
        submission_format(competition, frame)


def test_probability_formats_refuse_class_numbers_from_post_processing():
    with pytest.raises(DataError, match=r"needs \(n, 2\) class probabilities"):
        build_submission(BINARY, IDS, np.array([0, 1, 1]), sample("target"))
