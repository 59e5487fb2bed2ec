import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import KNeighborsClassifier

from competitions.timit import FRAME_DIM, widen_context
from competitions.timit.generate import N_CLASSES, SILENCE, generate
from pipeline.engine.splits import make_splits
from pipeline.errors import DataError
from pipeline.train import main
from tests.conftest import ROOT, small_config


@pytest.fixture(scope="module")
def timit():
    from pipeline.competition.catalog import load_competition

    return load_competition("timit")


@pytest.fixture(scope="module")
def timit_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("timit")
    generate(path, train_rows=6000, test_rows=1500, seed=0)
    return path


def _copy(timit_dir, tmp_path):
    import shutil

    shutil.copytree(timit_dir, tmp_path / "t")
    return tmp_path / "t" / "timit_11"


def test_generated_arrays_have_the_real_shapes_and_structure(timit, timit_dir):
    raw = np.load(timit_dir / "timit_11" / "train_label_11.npy")
    assert raw.dtype.kind == "U" and set(np.unique(raw)) <= {str(c) for c in range(N_CLASSES)}
    train, test = timit.load_train(timit_dir), timit.load_test(timit_dir)
    assert train.X.shape == (6000, 429) and train.X.dtype == np.float32
    assert test.X.shape == (1500, 429) and np.array_equal(test.ids, np.arange(1500))
    # neighbouring rows share 10 of their 11 frames (except across utterance boundaries)
    X = np.asarray(train.X)
    shared = np.all(X[1:, : 10 * FRAME_DIM] == X[:-1, FRAME_DIM:], axis=1)
    assert shared.mean() > 0.95
    # phones last several frames, silence is the most common class
    counts = np.bincount(train.y, minlength=N_CLASSES)
    assert counts.argmax() == SILENCE and (counts > 0).sum() > 30
    mean_run = len(train.y) / (np.count_nonzero(np.diff(train.y)) + 1)
    assert 4 < mean_run < 15
    assert abs(X.mean()) < 0.2 and 0.7 < X.std() < 1.3


def test_nested_archive_folders_are_found(timit, tmp_path):
    generate(tmp_path, train_rows=300, test_rows=100, nested=True)
    assert timit.load_train(tmp_path).X.shape == (300, 429)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (
            lambda d: np.save(d / "train_11.npy", np.zeros((10, 428), np.float32)),
            r"shape \(10, 428\); expected \(rows, 429\)",
        ),
        (
            lambda d: np.save(d / "train_label_11.npy", np.array(["1", "40"] * 3000)),
            r"row 1 holds class 40; labels must be 0..38",
        ),
        (
            lambda d: np.save(d / "train_label_11.npy", np.array(["1", "sil"] * 3000)),
            r"row 1 holds 'sil'; labels must be class numbers 0..38",
        ),
        (
            lambda d: np.save(d / "train_label_11.npy", np.array(["1"] * 5999)),
            r"5,999 labels for the 6,000 rows",
        ),
        (lambda d: _nan_row(d / "train_11.npy", 4321), r"train_11.npy row 4,321 holds NaN"),
        (lambda d: (d / "train_11.npy").write_bytes(b"not numpy"), r"not a readable .npy array"),
        (
            lambda d: (d / "train_label_11.npy").unlink(),
            r"train_label_11.npy not found .*scripts/download.sh timit.*--data-dir",
        ),
    ],
)
def test_bad_files_give_one_clear_line(timit, timit_dir, tmp_path, damage, message):
    folder = _copy(timit_dir, tmp_path)
    damage(folder)
    with pytest.raises(DataError, match=message):
        timit.load_train(folder.parent)


def _nan_row(path, row):
    X = np.load(path)
    X[row, 7] = np.nan
    np.save(path, X)


def test_bad_input_through_the_command_line(timit_dir, tmp_path, capsys):
    folder = _copy(timit_dir, tmp_path)
    np.save(folder / "test_11.npy", np.zeros((10, 39), np.float32))
    code = main(["timit", "--data-dir", str(folder.parent), "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "test_11.npy has shape (10, 39)" in err
    assert not (tmp_path / "r").exists()


def test_loading_keeps_peak_memory_near_the_array_size(tmp_path):
    """Memory-mapped loading: peak RSS grows by about the array's size, not by a copy of it."""
    generate(tmp_path, train_rows=120_000, test_rows=100, seed=1)
    size = (tmp_path / "timit_11" / "train_11.npy").stat().st_size
    probe = (
        "import resource, sys\n"
        "from pipeline.competition.catalog import load_competition\n"
        "c = load_competition('timit')\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        f"d = c.load_train({str(tmp_path)!r})\n"
        "after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print((after - before) * 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT)
    grown = int(out.stdout.strip())
    assert grown <= 1.2 * size, f"peak RSS grew {grown / size:.2f}x the array size"


def test_shuffled_folds_overestimate_accuracy_and_blocked_folds_do_not(timit, tmp_path):
    """1-nearest-neighbour finds a row's neighbour (10 shared frames) when folds are shuffled.
    Utterances it has never seen tell the true accuracy."""
    generate(tmp_path, train_rows=12_000, test_rows=4_000, seed=3)
    train = timit.load_train(tmp_path)
    X, y = np.asarray(train.X), train.y
    # true accuracy: train on the first 8,000 rows, score on unseen utterances after a gap
    model = KNeighborsClassifier(1).fit(X[:8000], y[:8000])
    true_acc = model.score(X[8100:], y[8100:])
    cfg = small_config(timit)

    def cv_acc(strategy, gap):
        cfg.cv.strategy, cfg.cv.gap = strategy, gap
        scores = []
        for tr, va in make_splits(cfg.cv, train, seed=0, classification=True):
            knn = KNeighborsClassifier(1).fit(X[tr], y[tr])
            scores.append(knn.score(X[va], y[va]))
        return float(np.mean(scores))

    shuffled, blocked = cv_acc("kfold", 0), cv_acc("blocked", 20)
    assert shuffled > true_acc + 0.2  # the leak
    assert abs(blocked - true_acc) < 0.05  # honest


def test_wider_context_takes_frames_from_neighbouring_rows(timit_dir, timit):
    X = np.asarray(timit.load_train(timit_dir).X)
    wide = widen_context(X, 15)
    assert wide.shape == (len(X), 15 * FRAME_DIM)
    np.testing.assert_array_equal(wide[:, 2 * FRAME_DIM : 13 * FRAME_DIM], X)  # own 11 frames
    centre = X[:, 5 * FRAME_DIM : 6 * FRAME_DIM]
    np.testing.assert_array_equal(wide[100:-100, :FRAME_DIM], centre[93:-107])  # frame t-7
    np.testing.assert_array_equal(wide[100:-100, -FRAME_DIM:], centre[107:-93])  # frame t+7
    narrow = widen_context(X, 5)
    np.testing.assert_array_equal(narrow, X[:, 3 * FRAME_DIM : 8 * FRAME_DIM])


@pytest.mark.slow
def test_train_runs_end_to_end_on_generated_data(timit_dir, tmp_path, capsys):
    out = tmp_path / "run"
    args = [
        "timit",
        "--data-dir",
        str(timit_dir),
        "--out",
        str(out),
        "--quiet",
        "model.hidden=[64]",
        "train.epochs=3",
        "cv.folds=3",
        "post.smooth=3",
    ]
    assert main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["cv"]["strategy"] == "blocked" and metrics["cv"]["gap"] == 20
    assert metrics["mean"] > 0.3  # well above the 1/39 of guessing
    assert metrics["post"]["viterbi"] and metrics["post"]["smooth"] == 3
    sub = pd.read_csv(out / "submission.csv")
    assert list(sub.columns) == ["Id", "Class"] and len(sub) == 1500
    assert sub["Id"].tolist() == list(range(1500)) and sub["Class"].between(0, 38).all()
    assert "accuracy + post" in capsys.readouterr().out


def test_a_graders_sample_submission_header_is_used(timit, timit_dir, tmp_path):
    folder = _copy(timit_dir, tmp_path)
    pd.DataFrame({"Id": range(1500), "ClassId": 0}).to_csv(
        folder.parent / "sampleSubmission.csv", index=False
    )
    sample = timit.load_sample_submission(folder.parent)
    assert list(sample.columns) == ["Id", "ClassId"]
