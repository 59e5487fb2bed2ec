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
