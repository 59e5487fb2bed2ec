"""ml2021spring-hw2: TIMIT framewise phoneme classification (39 classes, accuracy).

Files (as Kaggle unzips them, sometimes nested one level deeper): timit_11/train_11.npy
(1,229,932 x 429 float32: 11 frames x 39 MFCC), timit_11/train_label_11.npy (strings '0'..'38'),
timit_11/test_11.npy (451,552 x 429). Rows are consecutive frames of utterances: neighbouring
rows share 10 of 11 frames, so folds are contiguous blocks with a gap, and the order of test
rows is used by post-processing (smoothing, Viterbi).

Arrays are opened as memory maps and checked in chunks, so loading needs little more RAM than
the pages being read. `python -m competitions.timit.generate` writes look-alike arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition.base import Competition, TestData, TrainData
from pipeline.errors import ConfigError, DataError
from pipeline.model.metrics import Task
from pipeline.tabular.features import TabularFeatures, tabular_preprocessor
from pipeline.tabular.read import read_csv

N_CLASSES = 39
FRAME_DIM = 39
FRAMES = 11
COLUMNS = FRAMES * FRAME_DIM
CHUNK_ROWS = 65_536  # rows checked at a time: ~110 MB of float32 at 429 columns


@dataclass
class TimitFeatures(TabularFeatures):
    # Frames of context per row. 11 is what the files hold; a larger odd number adds frames
    # taken from the neighbouring rows (row t's centre frame is frame t), for train and test
    # alike, before any split.
    context: int = 11

    def check(self) -> None:
        super().check()
        if self.context < 1 or self.context % 2 == 0:
            raise ConfigError(f"features.context must be an odd int >= 1; got {self.context}.")


class Timit(Competition):
    name = "timit"
    slug = "ml2021spring-hw2"
    title = "ML2021Spring HW2: TIMIT framewise phoneme classification"
    task = Task("classification", n_classes=N_CLASSES)
    metric_name = "accuracy"
    id_column = "Id"
    target_column = "Class"
    features_cls = TimitFeatures
    defaults_file = Path(__file__).with_name("defaults.yaml")
    files = ("timit_11/train_11.npy", "timit_11/train_label_11.npy", "timit_11/test_11.npy")
    ordered_rows = True
    frame_dim = FRAME_DIM
    full_size = (1_229_932, 451_552)
    # the bench times the frame MLP (the fast engine's case); the default sequence model trains
    # one fold at a time (scripts/gpu_check.sh times it)
    bench_overrides = (
        "model.name=mlp",
        "model.hidden=[1024,1024,512,256]",
        "features.context=11",
        "train.grad_clip=0.0",
    )

    def generate(self, data_dir: Path, train_rows: int, test_rows: int, seed: int = 0) -> None:
        from competitions.timit.generate import generate

        generate(Path(data_dir), train_rows, test_rows, seed=seed)

    def array_dir(self, data_dir: Path) -> Path:
        """The folder holding the .npy files: timit_11/, timit_11/timit_11/ or data_dir."""
        data_dir = Path(data_dir)
        for folder in (data_dir / "timit_11", data_dir / "timit_11" / "timit_11", data_dir):
            if (folder / "train_11.npy").is_file() or (folder / "test_11.npy").is_file():
                return folder
        return data_dir / "timit_11"

    def load_train(self, data_dir: Path) -> TrainData:
        folder = self.array_dir(data_dir)
        X = _features(self.require_file(folder, "train_11.npy"))
        y = _labels(self.require_file(folder, "train_label_11.npy"))
        if len(y) != len(X):
            raise DataError(
                f"train_label_11.npy has {len(y):,} labels for the {len(X):,} rows of "
                "train_11.npy; both files must come from the same download."
            )
        return TrainData(X=X, y=y, ids=np.arange(len(y)), source="train_11.npy")

    def load_test(self, data_dir: Path) -> TestData:
        X = _features(self.require_file(self.array_dir(data_dir), "test_11.npy"))
        return TestData(X=X, ids=np.arange(len(X)), source="test_11.npy")

    def load_sample_submission(self, data_dir: Path) -> pd.DataFrame | None:
        for folder in (Path(data_dir), self.array_dir(data_dir)):
            for name in ("sampleSubmission.csv", "sample_submission.csv"):
                path = folder / name
                if path.is_file():
                    frame = pd.read_csv(path, nrows=0)
                    return read_csv(path, expected=[str(c) for c in frame.columns])
        return None

    def row_features(self, cfg, X: np.ndarray) -> np.ndarray:
        context = cfg.features.context
        if context == FRAMES:
            return X
        return widen_context(X, context)

    def make_preprocessor(self, cfg, train: TrainData):
        return tabular_preprocessor(cfg.features, self.task.kind, train.X.shape[1])


def widen_context(X: np.ndarray, context: int) -> np.ndarray:
    """Rows of `context` frames around each row's centre frame, taken from neighbouring rows
    (edges repeat the first/last frame). context < 11 keeps the central frames."""
    half = context // 2
    centre = FRAMES // 2
    if context <= FRAMES:
        lo = (centre - half) * FRAME_DIM
        return np.ascontiguousarray(X[:, lo : lo + context * FRAME_DIM])
    frames = np.asarray(X[:, centre * FRAME_DIM : (centre + 1) * FRAME_DIM])
    out = np.empty((len(X), context * FRAME_DIM), dtype=np.float32)
    # frames t-half..t+half: the row's own 11 frames in the middle, the rest from neighbours
    for f, offset in enumerate(range(-half, half + 1)):
        cols = slice(f * FRAME_DIM, (f + 1) * FRAME_DIM)
        if abs(offset) <= centre:
            own = (centre + offset) * FRAME_DIM
            out[:, cols] = X[:, own : own + FRAME_DIM]
        else:
            idx = np.clip(np.arange(len(X)) + offset, 0, len(X) - 1)
            out[:, cols] = frames[idx]
    return out


def _open_npy(path: Path) -> np.ndarray:
    """The array as a memory map (nothing read yet), or one line saying the file is broken."""
    try:
        return np.load(path, mmap_mode="r")
    except (ValueError, OSError) as exc:
        raise DataError(f"{path.name} is not a readable .npy array ({exc}).") from None


def _features(path: Path) -> np.ndarray:
    X = _open_npy(path)
    if X.ndim != 2 or X.shape[1] != COLUMNS:
        raise DataError(
            f"{path.name} has shape {X.shape}; expected (rows, {COLUMNS}): {FRAMES} frames x "
            f"{FRAME_DIM} MFCC features per row."
        )
    if X.dtype != np.float32:
        if X.dtype.kind not in "fiu":
            raise DataError(f"{path.name} holds {X.dtype} values; expected float32 features.")
        X = X.astype(np.float32)
    for start in range(0, len(X), CHUNK_ROWS):
        ok = np.isfinite(X[start : start + CHUNK_ROWS]).all(axis=1)
        if not ok.all():
            row = start + int(np.argmax(~ok))
            raise DataError(f"{path.name} row {row:,} holds NaN or infinite values.")
    return X


def _labels(path: Path) -> np.ndarray:
    raw = _open_npy(path)
    if raw.ndim != 1:
        raise DataError(f"{path.name} has shape {raw.shape}; expected one label per row.")
    if raw.dtype.kind in "US":
        try:
            labels = raw.astype(np.int64)  # the real files store '0'..'38' as strings
        except ValueError:
            bad = next(i for i, v in enumerate(raw) if not str(v).strip().lstrip("-").isdigit())
            raise DataError(
                f"{path.name} row {bad:,} holds {str(raw[bad])!r}; labels must be class "
                f"numbers 0..{N_CLASSES - 1}."
            ) from None
    elif raw.dtype.kind in "iu":
        labels = raw.astype(np.int64)
    else:
        raise DataError(f"{path.name} holds {raw.dtype} values; expected class numbers.")
    bad = (labels < 0) | (labels >= N_CLASSES)
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path.name} row {row:,} holds class {labels[row]}; labels must be "
            f"0..{N_CLASSES - 1}."
        )
    return labels


competition = Timit()
