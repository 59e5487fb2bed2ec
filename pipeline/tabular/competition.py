"""A Competition defined by a competition.yaml file (pipeline/tabular/spec.py): CSV files with
numeric and categorical columns, missing values, and class labels of any kind.

The files are read once per data folder (prepare_data), which also fixes the task (from the
yaml's task and metric, or the target's values) and the classes, so that everything that needs
them -- the model's outputs, the submission format -- knows them before training.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition.base import Competition, TestData, TrainData
from pipeline.errors import ConfigError, DataError
from pipeline.model.metrics import Metric, Task, check_target, check_task, get_metric
from pipeline.tabular.columns import (
    Labels,
    Layout,
    check_no_missing_target,
    require_columns,
)
from pipeline.tabular.features import (
    CSV_DEFAULTS,
    ColumnKinds,
    TabularFeatures,
    tabular_preprocessor,
)
from pipeline.tabular.read import read_csv
from pipeline.tabular.spec import CompetitionSpec

CLASSIFICATION_METRIC_DEFAULT = "accuracy"
REGRESSION_METRIC_DEFAULT = "rmse"


class CsvCompetition(Competition):
    features_cls = TabularFeatures

    def __init__(self, spec: CompetitionSpec, command: str | None = None):
        self.spec = spec
        self._command = command  # how the user named it (a path), for replay lines
        self.name = spec.name
        self.slug = spec.slug or ""
        self.title = spec.title or spec.name
        self.defaults_file = spec.path
        files = [spec.train, spec.test] + (
            [spec.sample_submission] if spec.sample_submission else []
        )
        self.files = tuple(files)
        self.needs_download = bool(spec.slug)
        self.sha256 = {}
        self.classes = None
        self._task: Task | None = None
        self._loaded: tuple | None = None  # (data_dir, train, test, sample)
        if spec.metric is not None:
            self.metric_name = spec.metric
        self.id_column = spec.id or ""
        self.target_column = spec.target or ""

    # -- what the engine reads ---------------------------------------------------------------
    @property
    def task(self) -> Task:
        if self._task is None:
            raise RuntimeError(f"{self.name}: prepare_data(data_dir) reads the task first.")
        return self._task

    @property
    def download_command(self) -> str | None:
        return f"python -m pipeline.download {self.spec.path}" if self.slug else None

    @property
    def files_go(self) -> str:
        return f"there or next to {self.spec.path}"

    def default_data_dir(self) -> Path:
        """The yaml's own folder when the files (or Kaggle's zip of them) lie beside it, else
        data/<slug or name>/."""
        folder = self.spec.folder
        if (folder / self.spec.train).is_file() or any(folder.glob("*.zip")):
            return folder
        candidates = [Path("data") / self.slug] if self.slug else []
        candidates.append(Path("data") / self.name)
        return next((folder for folder in candidates if folder.is_dir()), candidates[0])

    def defaults(self) -> dict:
        """competition.yaml's defaults: block, over the CSV defaults (CSV_DEFAULTS)."""
        from pipeline.config import merge

        return merge(copy.deepcopy(CSV_DEFAULTS), copy.deepcopy(self.spec.defaults))

    def search_space(self) -> dict:
        return dict(self.spec.search)

    @property
    def defaults_source(self) -> str:
        return str(self.spec.path)

    @property
    def log_target(self) -> bool:
        return get_metric(self.metric_name).target_transform == "log1p"

    @property
    def metric(self) -> Metric:
        """The metric on the scale the engine learns: rmsle is scored as the rmse of log1p
        values (the same number), since the target is stored as log1p(y)."""
        metric = get_metric(self.metric_name)
        if metric.target_transform != "log1p":
            return metric
        rmse = get_metric("rmse")
        return Metric(metric.name, rmse.fn, False, rmse.torch_fn, task_kind=metric.task_kind)

    def to_target_scale(self, values: np.ndarray) -> np.ndarray:
        return np.clip(np.expm1(values), 0, None) if self.log_target else values

    # -- reading -----------------------------------------------------------------------------
    def prepare_data(self, data_dir: Path) -> None:
        data_dir = Path(data_dir)
        if self._loaded is not None and self._loaded[0] == data_dir:
            return
        spec = self.spec
        train = read_csv(self.require_file(data_dir, spec.train), "the training data")
        test = read_csv(self.require_file(data_dir, spec.test), "the test data")
        sample = None
        if spec.sample_submission:
            sample = read_csv(
                self.require_file(data_dir, spec.sample_submission), "the sample submission"
            )
        self.id_column, self.target_column = self._id_and_target(train, test, sample)
        require_columns(train, [self.id_column, self.target_column], "id / target")
        require_columns(test, [self.id_column], "id")
        self._check_roles()
        ignored = {self.id_column, self.target_column, *spec.drop}
        for name in [*spec.drop, *spec.categorical]:
            if name not in train.columns:
                require_columns(train, [name], "listed in competition.yaml")
        features = [c for c in train.columns if c not in ignored]
        require_columns(test, features, "a feature column of the train file")
        if not features:
            raise DataError(f"{spec.train} has no feature columns besides the id and target.")
        if all(train[c].isna().all() for c in features):
            raise DataError(
                f"{spec.train}: every feature column is empty ({_few_names(features)}): there "
                "is nothing to learn from; fix or re-download the file."
            )
        check_no_missing_target(train, self.target_column)
        self._task, self.metric_name = self._task_and_metric(train[self.target_column])
        y = train[self.target_column]
        if self._task.is_classification:
            labels = Labels.fit(y, spec.positive)
            self.classes = labels.classes
            y = labels.encode(y, spec.train)
        else:
            if spec.positive is not None:
                raise ConfigError(f"{spec.path}: positive: applies to a binary task only.")
            y = y.to_numpy(dtype=np.float32)
            raw = get_metric(self.metric_name)
            check_target(raw, y, spec.train)
            if raw.target_transform == "log1p":  # rmsle is the rmse of log1p values
                y = np.log1p(y).astype(np.float32)
        layout = Layout.infer(train, test, features, spec.categorical)
        self.layout = layout
        X_train, X_test = layout.matrix(train), layout.matrix(test)
        self._has_missing = np.isnan(X_train).any(axis=0) | np.isnan(X_test).any(axis=0)
        self._loaded = (
            data_dir,
            TrainData(
                X=X_train,
                y=y,
                ids=train[self.id_column].to_numpy(),
                feature_names=features,
                source=spec.train,
                categorical=layout.categorical if layout.categorical.any() else None,
            ),
            TestData(X=X_test, ids=test[self.id_column].to_numpy(), source=spec.test),
            sample,
        )

    def _id_and_target(self, train, test, sample) -> tuple[str, str]:
        spec = self.spec
        id_col, target = spec.id, spec.target
        if sample is not None:
            id_col = id_col or sample.columns[0]
            others = [c for c in sample.columns[1:] if c in train.columns]
            if target is None and len(sample.columns) == 2 and others:
                target = others[0]
        if id_col is None:
            shared = [c for c in test.columns if c in train.columns]
            id_col = shared[0] if shared else None
        if target is None:
            extra = [c for c in train.columns if c not in test.columns]
            target = extra[0] if len(extra) == 1 else None
        if id_col is None or target is None:
            what = "id" if id_col is None else "target"
            raise ConfigError(
                f"{spec.path}: cannot tell the {what} column from the files; "
                f"set {what}: in competition.yaml."
            )
        return id_col, target

    def _check_roles(self) -> None:
        """The id, the target and the lists name different columns, each in one role."""
        spec, id_col, target = self.spec, self.id_column, self.target_column
        if id_col == target:
            raise ConfigError(
                f"{spec.path}: id and target both name the column {id_col!r}; the target is "
                "the column to predict and the id names each row: set them to different columns."
            )
        for key in ("drop", "categorical"):
            named = [c for c in getattr(spec, key) if c in (id_col, target)]
            if named:
                role = "target" if named[0] == target else "id"
                raise ConfigError(
                    f"{spec.path}: {key}: lists {named[0]!r}, the {role} column; {key}: names "
                    "feature columns only."
                )
        both = [c for c in spec.drop if c in spec.categorical]
        if both:
            raise ConfigError(
                f"{spec.path}: {both[0]!r} is listed under both drop: and categorical:; keep one."
            )

    def _task_and_metric(self, y: pd.Series) -> tuple[Task, str]:
        spec = self.spec
        metric = get_metric(spec.metric) if spec.metric else None
        kind = spec.task
        if kind == "auto":
            if metric is not None and metric.task_kind != "any":
                kind = "regression" if metric.task_kind == "regression" else "classification"
            else:
                kind = _kind_of_values(y)
        if kind in ("binary", "multiclass"):
            kind = "classification"
        if kind == "classification":
            n = y.nunique()
            if spec.task == "binary" and n != 2:
                raise DataError(
                    f"{spec.train}: task binary, but the target {y.name!r} has "
                    f"{n} distinct values."
                )
            if n < 2:
                raise DataError(f"{spec.train}: the target {y.name!r} holds one class only.")
            if spec.task == "auto" and _fractional(y):
                raise ConfigError(
                    f"{spec.path}: metric {spec.metric} scores classes, but the target "
                    f"{y.name!r} holds fractional numbers ({n:,} distinct values, e.g. "
                    f"{_first_fractional(y):g}): a regression target. Use a regression metric "
                    "(rmse, mae, ...), or task: multiclass if these numbers are class labels."
                )
            if spec.positive is not None and n != 2:
                raise ConfigError(
                    f"{spec.path}: positive: applies to a binary task; the target {y.name!r} "
                    f"has {n} classes. Remove positive:."
                )
            task = Task("classification", n_classes=int(n))
        else:
            if y.dtype.kind not in "iuf":
                raise DataError(
                    f"{spec.train}: task regression, but the target {y.name!r} "
                    "holds text; use task: binary or multiclass."
                )
            task = Task("regression")
        name = spec.metric or (
            CLASSIFICATION_METRIC_DEFAULT if task.is_classification else REGRESSION_METRIC_DEFAULT
        )
        check_task(get_metric(name), task)
        return task, name

    def _data(self, data_dir: Path):
        self.prepare_data(data_dir)
        return self._loaded

    def load_train(self, data_dir: Path) -> TrainData:
        train = self._data(data_dir)[1]
        return TrainData(**{**train.__dict__, "X": train.X.copy(), "y": train.y.copy()})

    def load_test(self, data_dir: Path) -> TestData:
        test = self._data(data_dir)[2]
        return TestData(X=test.X.copy(), ids=test.ids.copy(), source=test.source)

    def load_sample_submission(self, data_dir: Path) -> pd.DataFrame | None:
        sample = self._data(data_dir)[3]
        return None if sample is None else sample.copy()

    def make_preprocessor(self, cfg, train: TrainData):
        layout = self.layout
        n_categories = [
            len(layout.categories[f]) for f, c in zip(layout.features, layout.categorical) if c
        ]
        kinds = ColumnKinds(layout.categorical, n_categories, self._has_missing)
        return tabular_preprocessor(
            cfg.features, self.task.kind, len(layout.features), kinds=kinds, seed=cfg.seed
        )


def _few_names(names: list[str], n: int = 4) -> str:
    return ", ".join(names[:n]) + (f" and {len(names) - n} more" if len(names) > n else "")


def _fractional(y: pd.Series) -> bool:
    """Numbers with a fractional part: values, not class labels."""
    if y.dtype.kind not in "f":
        return False
    values = y.dropna().to_numpy(dtype=float)
    return bool(np.any(values != np.round(values)))


def _first_fractional(y: pd.Series) -> float:
    values = y.dropna().to_numpy(dtype=float)
    return float(values[np.argmax(values != np.round(values))])


def _kind_of_values(y: pd.Series) -> str:
    if y.dtype.kind in "bO" or y.dtype.kind not in "iuf":
        return "classification"
    values = y.to_numpy(dtype=float)
    whole = np.all(values == np.round(values))  # 0/1 targets are classes; counts are values
    return "classification" if whole and y.nunique() <= 2 else "regression"
