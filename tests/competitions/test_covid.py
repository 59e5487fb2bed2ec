import numpy as np
import pandas as pd
import pytest

from competitions.covid import FEATURES, GROUPS, STATES
from pipeline.errors import DataError
from tests.conftest import small_config


def test_loads_the_real_files(covid, covid_dir):
    train, test = covid.load_train(covid_dir), covid.load_test(covid_dir)
    assert train.X.shape == (2700, 93) and train.X.dtype == np.float32
    assert test.X.shape == (893, 93)
    assert train.y.mean() == pytest.approx(16.431, abs=1e-3)
    counts = np.bincount(train.groups)
    assert len(counts) == 40 and set(counts) == {67, 68}
    sample = covid.load_sample_submission(covid_dir)
    assert list(sample.columns) == ["id", "tested_positive"]
    assert np.array_equal(sample["id"], test.ids)


def test_rows_of_a_state_are_consecutive_days(covid, covid_dir):
    """Blocked folds rely on it: a row's target is the next row's day-2 tested_positive."""
    train = covid.load_train(covid_dir)
    day2 = train.X[:, FEATURES.index("tested_positive.1")]
    same_state = train.groups[1:] == train.groups[:-1]
    assert np.allclose(day2[1:][same_state], train.y[:-1][same_state])


def test_feature_groups_name_the_right_columns():
    assert [FEATURES[i] for i in GROUPS["tested_positive"]] == [
        "tested_positive",
        "tested_positive.1",
    ]
    assert [FEATURES[i] for i in GROUPS["states"]] == STATES
    assert len(GROUPS["illness"]) == 12 and len(GROUPS["day3"]) == 17
    assert sorted(GROUPS["day1"] + GROUPS["day2"] + GROUPS["day3"] + GROUPS["states"]) == list(
        range(93)
    )


def test_residual_preprocessing_predicts_the_change_from_day_2(covid, covid_dir):
    train = covid.load_train(covid_dir)
    pre = covid.make_preprocessor(small_config(covid), train).fit(train.X, train.y)
    z = pre.model_target(train.y, train.X)
    change = train.y - train.X[:, FEATURES.index("tested_positive.1")]
    assert np.allclose(z, (change - change.mean()) / change.std(), atol=1e-4)
    assert np.allclose(pre.inverse_target(z, train.X), train.y, atol=1e-4)
    assert pre.transform(train.X).shape[1] == 14  # tested_positive (2) + illness (12)


def _damage(path, edit):
    frame = pd.read_csv(path)
    frame = edit(frame)
    frame.to_csv(path, index=False)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda f: f.drop(columns="cli.1"), r"missing column\(s\) 'cli.1'"),
        (lambda f: f.assign(extra=1.0), r"unexpected column\(s\) 'extra'"),
        (
            lambda f: f.rename(columns={"ili": "ILI"}),
            r"column 'ili' is missing and 'ILI' is unexpected",
        ),
        (
            lambda f: f.astype({"cli": object}).assign(
                cli=lambda d: d.cli.where(d.index != 4, "n/a")
            ),
            r"line 6, column 'cli' holds 'n/a', not a finite number",
        ),
        (
            lambda f: f.assign(shop=lambda d: d.shop.where(d.index != 9)),
            r"line 11, column 'shop' is empty",
        ),
        (lambda f: f.assign(AL=0.0), r"line 2: the state columns must hold exactly one 1"),
    ],
)
def test_bad_train_files_give_one_clear_line(covid, covid_copy, edit, message):
    _damage(covid_copy / "covid.train.csv", edit)
    with pytest.raises(DataError, match=message):
        covid.load_train(covid_copy)


def test_empty_and_missing_files(covid, covid_copy):
    (covid_copy / "covid.test.csv").write_text("")
    with pytest.raises(DataError, match="covid.test.csv is empty"):
        covid.load_test(covid_copy)
    (covid_copy / "covid.train.csv").unlink()
    with pytest.raises(DataError, match=r"scripts/download.sh covid.*--data-dir"):
        covid.load_train(covid_copy)
