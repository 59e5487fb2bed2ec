"""The plug-in interface: one Competition object per folder in competitions/.

The engine never names a competition: pipeline.competition.catalog finds one by name (a plug-in
module, or a competition.yaml read by pipeline.tabular.competition).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.competition.preprocess import Preprocessor
from pipeline.config import NoFeatures, load_yaml
from pipeline.errors import DataError, UserError
from pipeline.model.metrics import Metric, Task, get_metric


@dataclass
class TrainData:
    X: np.ndarray  # (n_rows, n_features) float32, may be a memory map
    y: np.ndarray  # (n_rows,) float32 values or int64 classes
    ids: np.ndarray  # (n_rows,) row ids as in the file
    groups: np.ndarray | None = None  # group of each row (GroupKFold; blocks stay inside one)
    feature_names: list[str] | None = None
    source: str = "the training data"  # the file the rows came from, for error messages
    # raw columns that hold category codes 0..n-1 (NaN: missing), for encoders and the
    # HistGradientBoosting reference; None: every column is numeric
    categorical: np.ndarray | None = None


@dataclass
class TestData:
    X: np.ndarray
    ids: np.ndarray
    source: str = "the test data"


class Competition:
    """Subclass and set the class attributes; implement load_train/load_test/make_preprocessor."""

    name: str = ""  # the command-line name: python -m pipeline.train <name>
    slug: str = ""  # Kaggle's competition slug; data lives in data/<slug>/ by default
    title: str = ""
    task: Task = Task("regression")
    metric_name: str = "rmse"
    id_column: str = "id"
    target_column: str = "target"
    features_cls: type = NoFeatures  # a dataclass of this competition's feature options
    # The files a complete download holds (paths relative to the data folder), and the
    # sha256 of those whose exact bytes are known; the downloader checks both.
    files: tuple[str, ...] = ()
    # Rows that are consecutive time steps (frames) of one long sequence, in file order, for
    # train and test alike: post-processing over neighbouring rows (post.*) needs this.
    ordered_rows: bool = False
    needs_download: bool = True  # False for a built-in dataset whose prepare_data writes it
    frame_dim: int = 0  # > 0: each row is frames x frame_dim values (frame-context models)
    sha256: dict[str, str] = {}
    # classification: the competition's own class labels in class-number order (class i is
    # classes[i]); None: the labels are the class numbers 0..n_classes-1
    classes: list | None = None
    defaults_file: Path | None = None  # defaults.yaml beside the plug-in (with a search: block)

    @property
    def metric(self) -> Metric:
        return get_metric(self.metric_name)

    @property
    def command_name(self) -> str:
        """How commands name this competition (a CSV competition: the path it was given)."""
        return getattr(self, "_command", None) or self.name

    @property
    def defaults_source(self) -> str:
        """Where the defaults and the search: block come from, for messages."""
        return f"competitions/{self.name}/defaults.yaml"

    def to_target_scale(self, values: np.ndarray) -> np.ndarray:
        """Regression values on the scale the submission holds; the engine may learn another
        (a CSV competition scored by rmsle learns log1p of the target)."""
        return values

    def class_names(self) -> list:
        """What a submission writes for each class number."""
        return list(self.classes) if self.classes is not None else list(range(self.task.n_classes))

    @property
    def download_command(self) -> str | None:
        """The command that fetches the files; None where there is none (no Kaggle slug)."""
        return f"scripts/download.sh {self.name}"

    def default_data_dir(self) -> Path:
        return Path("data") / self.slug

    @property
    def files_go(self) -> str:
        """Where a user puts the files of a competition that nothing downloads, for messages."""
        return "there"

    def resolve_data_dir(self, given: Path | None) -> Path:
        """--data-dir, or the default folder; a zip of Kaggle's (given, or lying in the folder
        instead of the files) is extracted once next to itself (pipeline.kaggle.archive)."""
        from pipeline.kaggle.archive import unpacked

        data_dir = Path(given) if given is not None else self.default_data_dir()
        if given is not None and not data_dir.exists():
            raise DataError(
                f"--data-dir {data_dir} does not exist; give the folder of the competition's "
                "files, or Kaggle's zip of them."
            )
        if given is not None and not data_dir.is_dir() and data_dir.suffix.lower() != ".zip":
            raise DataError(f"--data-dir {data_dir} is not a folder (nor a zip of the files).")
        return unpacked(data_dir, self.files, (self.slug, self.name))

    def prepare_data(self, data_dir: Path) -> None:
        """Make sure the files exist (a built-in dataset writes them here); default: nothing."""

    # (train rows, test rows) of the real files, for plug-ins that can generate look-alike data
    full_size: tuple[int, int] | None = None
    # key=value overrides `python -m bench` adds to the defaults: the recipe it times
    # (both paths must train it, so it must stack; e.g. a frame MLP where the default is a
    # sequence model)
    bench_overrides: tuple[str, ...] = ()

    def generate(self, data_dir: Path, train_rows: int, test_rows: int, seed: int = 0) -> None:
        """Write generated files of the real ones' shapes into data_dir (benchmarks, tests)."""
        raise UserError(f"{self.name} cannot generate data; pass --data-dir with its files.")

    def load_train(self, data_dir: Path) -> TrainData:
        raise NotImplementedError

    def load_test(self, data_dir: Path) -> TestData:
        raise NotImplementedError

    def load_sample_submission(self, data_dir: Path) -> pd.DataFrame | None:
        """The sample submission if the competition ships one (header, id order, dtypes)."""
        return None

    def make_preprocessor(self, cfg: Any, train: TrainData) -> Preprocessor:
        """A fresh, unfitted preprocessor for one fold (cfg is the whole run config)."""
        return Preprocessor(None)

    def row_features(self, cfg: Any, X: np.ndarray) -> np.ndarray:
        """Features built from neighbouring rows of the whole array (no labels are used, so
        nothing leaks), applied once to train and once to test before any split."""
        return X

    # -- defaults and search space -------------------------------------------------------------
    def _defaults_yaml(self) -> dict:
        if self.defaults_file is None:
            return {}
        return load_yaml(self.defaults_file, "Competition defaults")

    def defaults(self) -> dict:
        data = dict(self._defaults_yaml())
        data.pop("search", None)
        return data

    def search_space(self) -> dict:
        return dict(self._defaults_yaml().get("search") or {})

    # -- helpers for loaders -------------------------------------------------------------------
    def require_file(self, data_dir: Path, filename: str) -> Path:
        path = Path(data_dir) / filename
        if not path.is_file():
            fetch = self.download_command
            how = (
                f"Run `{fetch}` to fetch the {self.slug or self.name} files, or pass --data-dir "
                "with the folder that holds them (or Kaggle's zip of them)."
                if fetch
                else f"Put the competition's files {self.files_go} (Kaggle's zip of them will "
                "do), or pass --data-dir with the folder or zip that holds them."
            )
            raise DataError(f"{filename} not found in {data_dir}. {how}")
        return path
