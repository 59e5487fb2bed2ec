"""The example competitions in tests/data/ hold together as Kaggle would lay them out."""

from __future__ import annotations

import runpy
from pathlib import Path

import pandas as pd
import pytest
import sklearn
import yaml

DATA = Path(__file__).resolve().parents[1] / "data"
SCRIPT = DATA.parents[1] / "scripts" / "make_example_data.py"
KEYS = {
    "name",
    "slug",
    "train",
    "test",
    "sample_submission",
    "id",
    "target",
    "task",
    "metric",
    "positive",
    "categorical",
    "drop",
}
# name: (target, metric, rows in train, rows in test, columns that must not be there)
SETS = {
    "penguins": ("species", "accuracy", 258, 86, []),
    "wage": ("wage", "rmse", 2250, 750, ["logwage"]),
    "titanic": ("survived", "auc", 981, 328, ["boat", "body"]),
}
ARFF = (
    Path(sklearn.__file__).parent
    / "datasets"
    / "tests"
    / "data"
    / "openml"
    / "id_40945"
    / "data-v1-dl-16826755.arff.gz"
)


def read(folder: Path, name: str) -> pd.DataFrame:
    return pd.read_csv(folder / name, dtype=str, keep_default_na=False)


@pytest.mark.parametrize("name", SETS)
def test_folder_is_a_consistent_competition(name):
    target, metric, n_train, n_test, leaks = SETS[name]
    folder = DATA / name
    cfg = yaml.safe_load((folder / "competition.yaml").read_text())
    assert set(cfg) == KEYS | {"defaults", "search"}  # the contract plus config blocks
    assert (cfg["name"], cfg["id"], cfg["target"], cfg["metric"]) == (name, "id", target, metric)
    train, test = read(folder, cfg["train"]), read(folder, cfg["test"])
    sample, solution = read(folder, cfg["sample_submission"]), read(folder, "solution.csv")
    assert (len(train), len(test)) == (n_train, n_test)
    assert list(train.columns) == [*test.columns, target] and test.columns[0] == "id"
    assert list(sample.columns) == list(solution.columns) == ["id", target]
    assert list(sample["id"]) == list(solution["id"]) == list(test["id"])
    assert train["id"].is_unique and test["id"].is_unique
    assert not set(train["id"]) & set(test["id"])
    assert not set(leaks) & set(train.columns)
    assert (train[target] != "").all() and (solution[target] != "").all()
    assert set(solution[target]) <= set(train[target]) or metric == "rmse"


def test_titanic_rebuilds_byte_for_byte(tmp_path):
    if not ARFF.is_file():
        pytest.skip(f"scikit-learn's OpenML fixture is not at {ARFF}")
    runpy.run_path(str(SCRIPT))["main"](["--titanic", str(ARFF), "--out", str(tmp_path)])
    for path in sorted((DATA / "titanic").glob("*.*")):
        if path.suffix == ".csv":  # the yaml's defaults/search blocks are edited by hand
            assert (tmp_path / "titanic" / path.name).read_bytes() == path.read_bytes(), path.name
