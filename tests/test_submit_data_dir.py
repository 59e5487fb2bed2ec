"""python -m pipeline.submit without --data-dir, on a file inside a run folder: the data folder
comes from the run's provenance.json (pipeline.run.provenance.recorded_data_dir)."""

import contextlib
import io
import shutil

import pandas as pd
import pytest

from pipeline.competition.catalog import load_competition
from pipeline.io import write_json
from pipeline.run.provenance import collect, recorded_data_dir
from pipeline.submit import main as submit
from pipeline.train import main as train

DEMO_FILES = load_competition("demo").files


def quiet(command, argv):
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        code = command([str(a) for a in argv])
    return code, stdout.getvalue(), stderr.getvalue()


@pytest.fixture
def run_with_data_dir(demo_dir, tmp_path, monkeypatch):
    """(run folder, its data folder): demo trained with --data-dir on a copy of the files, then
    the working directory moved, so the default data/demo/ is another folder."""
    data = shutil.copytree(demo_dir, tmp_path / "my-data")
    out = tmp_path / "run"
    argv = [
        "demo",
        "--data-dir",
        data,
        "--out",
        out,
        "--quiet",
        "cv.folds=2",
        "train.epochs=2",
        "cv.baseline=false",
    ]
    code, _, err = quiet(train, argv)
    assert code == 0, err
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    return out, data


def test_submit_checks_against_the_data_folder_the_run_read(run_with_data_dir, tmp_path):
    out, data = run_with_data_dir
    argv = ["demo", out / "submission.csv", "-m", "first", "--dry-run"]
    code, stdout, err = quiet(submit, argv)
    assert code == 0, err
    assert stdout.startswith(f"checking against {data.resolve()}/, the data folder of the run")
    assert "is a valid submission" in stdout
    # proof that it is that folder: damage its sample submission and the same file is refused
    sample = pd.read_csv(data / "sample_submission.csv")
    sample.assign(id=sample["id"] + 100_000).to_csv(data / "sample_submission.csv", index=False)
    code, _, err = quiet(submit, argv)
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert not (tmp_path / "elsewhere" / "data").exists()  # the default folder was not used


@pytest.mark.parametrize(
    ("layout", "found"),
    [
        ("run/submission.csv", True),
        ("run/ensemble/submission.csv", True),  # a tuning run's ensemble
        ("loose/submission.csv", False),  # no provenance.json
        ("other/submission.csv", False),  # another competition's files
        ("gone/submission.csv", False),  # the data folder was deleted since
    ],
)
def test_recorded_data_dir(layout, found, demo_dir, tmp_path):
    data = shutil.copytree(demo_dir, tmp_path / "data")
    write_json(tmp_path / "run" / "provenance.json", collect(data, DEMO_FILES))
    write_json(tmp_path / "other" / "provenance.json", collect(data, ["covid.train.csv"]))
    write_json(tmp_path / "gone" / "provenance.json", collect(tmp_path / "nope", DEMO_FILES))
    file = tmp_path / layout
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("id,label\n")
    assert recorded_data_dir(file, DEMO_FILES) == (data.resolve() if found else None)
