"""ml2021spring-hw1: COVID-19 cases prediction (tabular regression, RMSE).

Each train row is a 3-day window of one US state: 40 state one-hots, then 18 survey indicators
for day 1, day 2 and day 3; the target is day 3's `tested_positive`. A state's 67-68 windows
slide by one day and come in time order, so a row's target reappears as day-2/day-1
`tested_positive` of the next rows: shuffled folds leak, the defaults use blocked folds within
each state with a gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition.base import Competition, TestData, TrainData
from pipeline.errors import DataError
from pipeline.model.metrics import Task
from pipeline.tabular.features import TabularFeatures, tabular_preprocessor
from pipeline.tabular.read import read_csv

STATES = (  # noqa: SIM905 (one line of 40 codes reads better than 40 lines)
    "AL AK AZ AR CA CO CT FL GA ID IL IN IA KS KY LA MD MA MI MN MS MO NE NV NJ NM NY NC OH OK OR "
    "PA RI SC TX UT VA WA WV WI"
).split()
INDICATORS = [
    "cli",
    "ili",
    "hh_cmnty_cli",
    "nohh_cmnty_cli",
    "wearing_mask",
    "travel_outside_state",
    "work_outside_home",
    "shop",
    "restaurant",
    "spent_time",
    "large_event",
    "public_transit",
    "anxious",
    "depressed",
    "felt_isolated",
    "worried_become_ill",
    "worried_finances",
    "tested_positive",
]
TARGET = "tested_positive.2"  # day 3, as pandas names the third `tested_positive`
DAY_SUFFIX = ("", ".1", ".2")
FEATURES = STATES + [f"{name}{suffix}" for suffix in DAY_SUFFIX for name in INDICATORS][:-1]
TRAIN_COLUMNS = ["id", *FEATURES, TARGET]
TEST_COLUMNS = ["id", *FEATURES]

# Named column groups for features.select=groups (indices into FEATURES).
ILLNESS = ("cli", "ili", "hh_cmnty_cli", "nohh_cmnty_cli")
BEHAVIOUR = (
    "wearing_mask",
    "travel_outside_state",
    "work_outside_home",
    "shop",
    "restaurant",
    "spent_time",
    "large_event",
    "public_transit",
)
MOOD = ("anxious", "depressed", "felt_isolated", "worried_become_ill", "worried_finances")


def _columns(predicate) -> list[int]:
    return [i for i, name in enumerate(FEATURES) if predicate(name)]


def _base(name: str) -> str:
    return name.split(".")[0]


def _day(name: str) -> int:
    return 1 + (DAY_SUFFIX.index("." + name.split(".")[1]) if "." in name else 0)


GROUPS: dict[str, list[int]] = {
    "states": _columns(lambda c: c in STATES),
    "day1": _columns(lambda c: c not in STATES and _day(c) == 1),
    "day2": _columns(lambda c: c not in STATES and _day(c) == 2),
    "day3": _columns(lambda c: c not in STATES and _day(c) == 3),
    "tested_positive": _columns(lambda c: _base(c) == "tested_positive"),
    "illness": _columns(lambda c: _base(c) in ILLNESS),
    "behaviour": _columns(lambda c: _base(c) in BEHAVIOUR),
    "mood": _columns(lambda c: _base(c) in MOOD),
}
DAY2_TESTED_POSITIVE = FEATURES.index("tested_positive.1")


@dataclass
class CovidFeatures(TabularFeatures):
    # residual: the network predicts the change from day 2's tested_positive (persistence is
    # already a strong forecast), and predictions add day 2 back.
    residual: bool = True

    def group_names(self) -> list[str]:
        return list(GROUPS)


class Covid(Competition):
    name = "covid"
    slug = "ml2021spring-hw1"
    title = "ML2021Spring HW1: COVID-19 cases prediction"
    task = Task("regression")
    metric_name = "rmse"
    id_column = "id"
    target_column = "tested_positive"
    features_cls = CovidFeatures
    files = ("covid.train.csv", "covid.test.csv", "sampleSubmission.csv")
    sha256 = {
        "covid.train.csv": "7b70cccab9712a6f6c780eddbdde2484a43c98e1b63b765d64692b8f2ed9225a",
        "covid.test.csv": "6b5ba63b3d025889ebe7ee222b23b39d1a0c45761cfb3babfaa20a5ec0dbc051",
        "sampleSubmission.csv": "6c1f11641b0e21af2f5f0df588974bf61028bdacf2e3255744f1d450846f6e8c",
    }
    defaults_file = Path(__file__).with_name("defaults.yaml")

    def load_train(self, data_dir: Path) -> TrainData:
        frame = read_csv(self.require_file(data_dir, "covid.train.csv"), expected=TRAIN_COLUMNS)
        X = frame[FEATURES].to_numpy(dtype=np.float32)
        return TrainData(
            X=X,
            y=frame[TARGET].to_numpy(dtype=np.float32),
            ids=frame["id"].to_numpy(),
            groups=_state_of_rows(X, "covid.train.csv"),
            feature_names=list(FEATURES),
            source="covid.train.csv",
        )

    def load_test(self, data_dir: Path) -> TestData:
        frame = read_csv(self.require_file(data_dir, "covid.test.csv"), expected=TEST_COLUMNS)
        X = frame[FEATURES].to_numpy(dtype=np.float32)
        _state_of_rows(X, "covid.test.csv")
        return TestData(X=X, ids=frame["id"].to_numpy(), source="covid.test.csv")

    def load_sample_submission(self, data_dir: Path) -> pd.DataFrame | None:
        path = Path(data_dir) / "sampleSubmission.csv"
        if not path.is_file():
            return None
        return read_csv(path, expected=["id", "tested_positive"])

    def make_preprocessor(self, cfg, train: TrainData):
        features: CovidFeatures = cfg.features
        return tabular_preprocessor(
            features,
            self.task.kind,
            len(FEATURES),
            groups=GROUPS,
            offset_column=DAY2_TESTED_POSITIVE if features.residual else None,
        )


def _state_of_rows(X: np.ndarray, filename: str) -> np.ndarray:
    onehot = X[:, : len(STATES)]
    ok = ((onehot == 0) | (onehot == 1)).all(axis=1) & (onehot.sum(axis=1) == 1)
    if not ok.all():
        line = int(np.argmax(~ok)) + 2
        raise DataError(
            f"{filename} line {line}: the state columns must hold exactly one 1 (a one-hot)."
        )
    return onehot.argmax(axis=1)


competition = Covid()
