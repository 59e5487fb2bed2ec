"""demo: handwritten digits (scikit-learn's bundled copy of the UCI 8x8 digits), laid out like a
Kaggle competition so the whole pipeline runs with no Kaggle account and no network.

On first use it writes data/demo/train.csv (id, 64 pixels, label), test.csv (id, 64 pixels) and
sample_submission.csv (id, label) from the copy that ships inside scikit-learn: a fixed,
stratified 80/20 split, so every machine gets the same files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition.base import Competition, TestData, TrainData
from pipeline.io import write_csv
from pipeline.model.metrics import Task
from pipeline.tabular.features import TabularFeatures, tabular_preprocessor
from pipeline.tabular.read import class_labels, read_csv

PIXELS = [f"pixel{i}" for i in range(64)]


class Demo(Competition):
    name = "demo"
    slug = "demo"
    title = "Demo: 8x8 handwritten digits (ships with scikit-learn)"
    task = Task("classification", n_classes=10)
    metric_name = "accuracy"
    id_column = "id"
    target_column = "label"
    features_cls = TabularFeatures
    files = ("train.csv", "test.csv", "sample_submission.csv")
    needs_download = False
    defaults_file = Path(__file__).with_name("defaults.yaml")

    @property
    def download_command(self) -> str:
        return "python -m pipeline.train demo (it writes the demo files itself)"

    def prepare_data(self, data_dir: Path) -> None:
        data_dir = Path(data_dir)
        if all((data_dir / f).is_file() for f in self.files):
            return
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        ids = np.arange(len(digits.target))
        tr, te = train_test_split(ids, test_size=0.2, stratify=digits.target, random_state=0)
        frame = pd.DataFrame(digits.data.astype(np.int64), columns=PIXELS)
        frame.insert(0, "id", ids)
        frame["label"] = digits.target
        train = frame.iloc[np.sort(tr)]
        test = frame.iloc[np.sort(te)]
        write_csv(data_dir / "train.csv", train)
        write_csv(data_dir / "test.csv", test.drop(columns="label"))
        write_csv(data_dir / "sample_submission.csv", test[["id"]].assign(label=0))

    def load_train(self, data_dir: Path) -> TrainData:
        frame = read_csv(
            self.require_file(data_dir, "train.csv"), expected=["id", *PIXELS, "label"]
        )
        return TrainData(
            X=frame[PIXELS].to_numpy(dtype=np.float32),
            y=class_labels("train.csv", frame["label"], self.task.n_classes),
            ids=frame["id"].to_numpy(),
            feature_names=list(PIXELS),
            source="train.csv",
        )

    def load_test(self, data_dir: Path) -> TestData:
        frame = read_csv(self.require_file(data_dir, "test.csv"), expected=["id", *PIXELS])
        X = frame[PIXELS].to_numpy(dtype=np.float32)
        return TestData(X=X, ids=frame["id"].to_numpy(), source="test.csv")

    def load_sample_submission(self, data_dir: Path) -> pd.DataFrame | None:
        path = Path(data_dir) / "sample_submission.csv"
        return read_csv(path, expected=["id", "label"]) if path.is_file() else None

    def make_preprocessor(self, cfg, train: TrainData):
        return tabular_preprocessor(cfg.features, self.task.kind, len(PIXELS))


competition = Demo()
