"""Kaggle's zip read where the files are expected (pipeline.kaggle.archive): extracted once next
to itself and said in one line, from under the folder the zip nests them in, never outside
the folder it goes to, never over a file that is there."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from pipeline.errors import DataError
from pipeline.kaggle.archive import unpacked

FILES = ("train.csv", "test.csv", "sample_submission.csv")


def make_zip(path: Path, members: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)
    return path


def members(prefix: str = "") -> dict[str, str]:
    return {f"{prefix}{f}": f"id,x\n1,{i}\n" for i, f in enumerate(FILES)}


def test_a_zip_given_as_the_folder_is_extracted_once_beside_it(tmp_path):
    archive = make_zip(tmp_path / "dl" / "titanic.zip", members())
    said: list[str] = []
    folder = unpacked(archive, FILES, say=said.append)
    assert folder == tmp_path / "dl" / "titanic"
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert said == [
        f"extracted titanic.zip: 3 file(s) into {folder}/, once; the zip is kept and later "
        "runs read the files."
    ]
    assert archive.is_file() and [p.name for p in archive.parent.iterdir()] != []
    assert unpacked(archive, FILES, say=said.append) == folder and len(said) == 1  # once


def test_a_folder_holding_the_zip_gets_the_files_beside_it_from_a_nested_folder(tmp_path):
    folder = tmp_path / "dl"
    make_zip(folder / "titanic.zip", members("titanic/"))
    (folder / "notes.txt").write_text("mine\n")
    said: list[str] = []
    assert unpacked(folder, FILES, say=said.append) == folder
    assert sorted(p.name for p in folder.iterdir()) == sorted([*FILES, "notes.txt", "titanic.zip"])
    assert "into " + f"{folder}/ (beside it)" in said[0]
    assert unpacked(folder, FILES, say=said.append) == folder and len(said) == 1


def test_a_file_that_is_there_is_kept(tmp_path):
    folder = tmp_path / "dl"
    make_zip(folder / "comp.zip", members())
    (folder / "train.csv").write_text("id,x\n1,mine\n")
    unpacked(folder, FILES, say=lambda _: None)
    assert (folder / "train.csv").read_text() == "id,x\n1,mine\n"
    assert (folder / "test.csv").is_file()


def test_without_known_files_any_csv_counts(tmp_path):
    """pipeline.new knows no file names yet: the zip's CSV files, from under its one folder."""
    folder = tmp_path / "dl"
    make_zip(folder / "x.zip", members("x/"))
    assert unpacked(folder, (), say=lambda _: None) == folder
    assert (folder / "train.csv").is_file() and not (folder / "x").exists()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (
            lambda d: make_zip(d / "evil.zip", {"../escape.csv": "x"}),
            r"The archive evil.zip holds an unsafe path '\.\./escape\.csv'; refusing",
        ),
        (
            lambda d: (d / "bad.zip").write_bytes(b"PK\x03\x04 not a zip at all"),
            r"The archive bad.zip is damaged or incomplete",
        ),
        (
            lambda d: make_zip(d / "other.zip", {"readme.txt": "x"}),
            r"other.zip lacks train.csv, test.csv, sample_submission.csv \(it holds readme.txt\)",
        ),
        (
            lambda d: [make_zip(d / n, members()) for n in ("a.zip", "b.zip")],
            r"holds 2 zip files \(a.zip, b.zip\) and not the competition's files; pass the "
            r"competition's zip itself as --data-dir",
        ),
    ],
    ids=["unsafe-path", "damaged", "other-files", "two-zips"],
)
def test_a_zip_that_cannot_be_used_is_refused_and_nothing_is_left(tmp_path, setup, message):
    folder = tmp_path / "dl"
    folder.mkdir()
    setup(folder)
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(DataError, match=message):
        unpacked(folder, FILES, say=lambda _: None)
    assert sorted(p.name for p in folder.iterdir()) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dl"]


def test_two_zips_one_named_after_the_competition(tmp_path):
    folder = tmp_path / "dl"
    make_zip(folder / "titanic.zip", members())
    make_zip(folder / "extra.zip", {"other.csv": "a\n1\n"})
    assert unpacked(folder, FILES, ("titanic",), say=lambda _: None) == folder
    assert (folder / "train.csv").is_file() and not (folder / "other.csv").exists()
