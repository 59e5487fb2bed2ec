"""python -m pipeline.new: a competition.yaml from a Kaggle download, and the inputs it
refuses in one line (a NAME that is a path, an --out it cannot write, files that are not
comma-separated) before it writes anything."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from pipeline.new import main

DATA = Path(__file__).parent / "data"


def new(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def files(tmp_path) -> Path:
    folder = tmp_path / "download"
    shutil.copytree(
        DATA / "penguins", folder, ignore=shutil.ignore_patterns("competition.yaml", "*.md")
    )
    return folder


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["../../escape2"], r"NAME must be a plain folder name .*got '\.\./\.\./escape2'"),
        (["a/b"], r"NAME must be a plain folder name"),
        (
            ["x", "--out", "/proc/x/y/competition.yaml"],
            r"cannot create the folder of --out /proc/x/y: /proc is not writable",
        ),
    ],
)
def test_refused_in_one_line_before_anything_is_written(
    files, tmp_path, monkeypatch, capsys, argv, message
):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code, out, err = new(capsys, *argv, "--data-dir", files)
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert out == "" and sorted(p.name for p in tmp_path.iterdir()) == ["a", "download"]
    assert list(work.iterdir()) == []


@pytest.mark.parametrize(("sep", "shown"), [(";", "';'"), ("\t", "tabs")])
def test_files_separated_by_other_characters_are_refused(files, capsys, sep, shown):
    for path in files.glob("*.csv"):
        path.write_text(path.read_text().replace(",", sep))
    out = files / "competition.yaml"
    code, _, err = new(capsys, "penguins", "--data-dir", files, "--out", out)
    assert code == 2 and err.count("\n") == 1, err
    assert re.search(rf"has one column named .*: its values are separated by {shown}", err)
    assert not out.exists()


def test_an_existing_folder_as_out_gets_the_yaml_inside(files, capsys):
    code, out, err = new(capsys, "penguins", "--data-dir", files, "--out", files)
    assert code == 0, err
    assert (files / "competition.yaml").is_file() and f"wrote {files / 'competition.yaml'}" in out


def _kaggle_zip(folder: Path, name: str = "titanic") -> Path:
    """A folder holding only what Kaggle's Download button gives: <name>.zip."""
    import zipfile

    folder.mkdir(parents=True)
    with zipfile.ZipFile(folder / f"{name}.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for f in ("train.csv", "test.csv", "sample_submission.csv"):
            zf.write(DATA / name / f, f)
    return folder


def test_a_folder_holding_kaggles_zip_trains_and_submits(tmp_path, monkeypatch, capsys):
    """new, train and submit --dry-run on the folder a download left: the zip is extracted
    once, beside itself, and said in one line; nothing extracts it again."""
    from pipeline.submit import main as submit_main
    from pipeline.train import main as train_main

    download = _kaggle_zip(tmp_path / "Downloads")
    monkeypatch.chdir(tmp_path)
    code, out, err = new(capsys, "titanic", "--data-dir", download)
    assert code == 0, err
    assert err == (
        f"extracted titanic.zip: 3 file(s) into {download}/ (beside it), once; the zip is kept "
        "and later runs read the files.\n"
    )
    yaml = tmp_path / "competitions" / "titanic" / "competition.yaml"
    assert (
        f"next: python -m pipeline.train {yaml.relative_to(tmp_path)} --data-dir {download}" in out
    )
    run = tmp_path / "run"
    argv = [
        "titanic",
        "--data-dir",
        download,
        "--out",
        run,
        "--quiet",
        "train.epochs=1",
        "cv.folds=2",
    ]
    assert train_main([str(a) for a in argv]) == 0
    assert capsys.readouterr().err == ""  # extracted already: nothing to say
    args = ["titanic", str(run / "submission.csv"), "-m", "x", "--dry-run"]
    assert submit_main(args) == 0
    assert "is a valid submission" in capsys.readouterr().out


@pytest.mark.parametrize("door", ["train", "submit"])
def test_the_zip_itself_as_data_dir(tmp_path, capsys, door):
    from pipeline.submit import main as submit_main
    from pipeline.train import main as train_main

    archive = _kaggle_zip(tmp_path / "dl", "penguins") / "penguins.zip"
    yaml = DATA / "penguins" / "competition.yaml"
    if door == "train":
        argv = [yaml, "--data-dir", archive, "--out", tmp_path / "run", "--quiet"]
        quick = ["train.epochs=1", "cv.folds=2", "cv.baseline=false"]
        code = train_main([str(a) for a in [*argv, *quick]])
    else:
        sample = DATA / "penguins" / "sample_submission.csv"
        code = submit_main(
            [str(yaml), str(sample), "-m", "x", "--data-dir", str(archive), "--dry-run"]
        )
    assert code == 0
    assert f"into {tmp_path / 'dl' / 'penguins'}/, once" in capsys.readouterr().err
    assert (tmp_path / "dl" / "penguins" / "train.csv").is_file()


def test_a_missing_file_says_where_to_put_it_without_a_download_command(tmp_path, capsys):
    """A competition.yaml without a slug has no download command: the line says where the
    files (or the zip) go, not 'Run `copy ...` to fetch the  files'."""
    from pipeline.train import main as train_main

    yaml = tmp_path / "comp" / "competition.yaml"
    yaml.parent.mkdir()
    yaml.write_text((DATA / "penguins" / "competition.yaml").read_text())
    empty = tmp_path / "empty"
    empty.mkdir()
    assert train_main([str(yaml), "--data-dir", str(empty), "--out", str(tmp_path / "r")]) == 2
    assert capsys.readouterr().err == (
        f"error: train.csv not found in {empty}. Put the competition's files there or next to "
        f"{yaml} (Kaggle's zip of them will do), or pass --data-dir with the folder or zip "
        "that holds them.\n"
    )
