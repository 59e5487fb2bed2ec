"""python -m pipeline.download against a fake Kaggle client: archives built here from small files
(and the real COVID files), no network, no account."""

from __future__ import annotations

import errno
import hashlib
import io
import os
import re
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import requests

from pipeline import download
from pipeline.competition.base import Competition
from pipeline.competition.catalog import load_competition
from pipeline.download import main
from tests.conftest import fake_kaggle_fixture

KEY = "FAKEKEY-d41d8cd98f00b204e980"  # recognisable: must never reach the terminal


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class FakeApi:
    """Stands in for kaggle.KaggleApi: writes `payload` as <slug>.zip, or raises `error`."""

    def __init__(self):
        self.payload: bytes = b""
        self.error: BaseException | None = None
        self.hang = threading.Event()  # set by the test's teardown to release a hung call
        self.hang_for = 0.0
        self.calls: list[dict] = []

    def competition_download_files(self, competition, path=None, force=False, quiet=True):
        self.calls.append({"competition": competition, "path": path, "force": force})
        print(f"fake client chatter: key={KEY}")  # what a noisy client might print
        if self.hang_for:
            self.hang.wait(self.hang_for)
            return
        if self.error is not None:
            raise self.error
        Path(path, f"{competition}.zip").write_bytes(self.payload)


@pytest.fixture
def api(monkeypatch, tmp_path):
    """A fake client behind kaggle_io.get_api, and credentials in the environment only."""
    yield from fake_kaggle_fixture(monkeypatch, tmp_path, FakeApi(), KEY)


@pytest.fixture
def covid_zip(covid_dir) -> bytes:
    return zip_bytes(
        {
            f: (covid_dir / f).read_bytes()
            for f in ("covid.train.csv", "covid.test.csv", "sampleSubmission.csv")
        }
    )


FILES = {"train.csv": b"id,x,y\n0,1.5,1\n1,2.5,0\n", "test.csv": b"id,x\n2,3.5\n"}


class Tiny(Competition):
    name = "tiny"
    slug = "tiny-comp"
    files = ("train.csv", "test.csv")
    sha256 = {"train.csv": sha(FILES["train.csv"])}  # test.csv: bytes unknown, presence only


class Nested(Competition):
    name = "nested"
    slug = "ml2021spring-hw2"
    files = ("timit_11/train_11.npy", "timit_11/test_11.npy")


def listing(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def no_staging_left(data_dir: Path) -> bool:
    return not list(data_dir.parent.glob(f".{data_dir.name}.download-*"))


# -- success, idempotency, --force ---------------------------------------------------------------
def test_covid_is_downloaded_extracted_and_checked(
    api, covid_zip, covid, covid_dir, tmp_path, capsys
):
    api.payload = covid_zip
    data_dir = tmp_path / "data" / "ml2021spring-hw1"
    assert main(["covid", "--data-dir", str(data_dir)]) == 0
    out = capsys.readouterr().out
    assert "Downloaded ml2021spring-hw1: 3 files" in out and "3 checked by sha256" in out
    assert api.calls == [
        {"competition": "ml2021spring-hw1", "path": api.calls[0]["path"], "force": True}
    ]
    for name, digest in covid.sha256.items():
        assert sha((data_dir / name).read_bytes()) == digest
    assert sorted(listing(data_dir)) == sorted(covid.files)
    assert no_staging_left(data_dir)


def test_a_second_run_downloads_nothing_and_force_downloads_again(
    api, covid_zip, tmp_path, capsys
):
    api.payload = covid_zip
    data_dir = tmp_path / "covid"
    assert main(["covid", "--data-dir", str(data_dir)]) == 0
    assert main(["covid", "--data-dir", str(data_dir)]) == 0
    assert len(api.calls) == 1
    assert "present and valid" in capsys.readouterr().out.splitlines()[-1]
    assert main(["covid", "--data-dir", str(data_dir), "--force"]) == 0
    assert len(api.calls) == 2


def test_the_idempotency_message(api, covid_dir, capsys):
    assert main(["covid", "--data-dir", str(covid_dir)]) == 0
    out = capsys.readouterr().out
    assert "All 3 files of ml2021spring-hw1 are present and valid" in out
    assert "nothing downloaded (add --force to download again)" in out
    assert api.calls == []


def test_a_changed_local_file_is_downloaded_again(api, covid_zip, covid_copy, covid, capsys):
    api.payload = covid_zip
    (covid_copy / "covid.test.csv").write_text("id\n0\n")
    assert main(["covid", "--data-dir", str(covid_copy)]) == 0
    assert "covid.test.csv differs from the known file" in capsys.readouterr().out
    assert sha((covid_copy / "covid.test.csv").read_bytes()) == covid.sha256["covid.test.csv"]


def test_the_default_data_dir_is_data_slug(api, covid_zip, tmp_path, monkeypatch):
    api.payload = covid_zip
    monkeypatch.chdir(tmp_path)
    assert main(["covid"]) == 0
    assert (tmp_path / "data" / "ml2021spring-hw1" / "covid.train.csv").is_file()


def test_demo_needs_no_download(api, tmp_path, capsys):
    data_dir = tmp_path / "demo"
    assert main(["demo", "--data-dir", str(data_dir)]) == 0
    assert (
        "demo needs no download: its files are built in (wrote 3 files" in capsys.readouterr().out
    )
    assert (data_dir / "train.csv").is_file() and api.calls == []
    assert main(["demo", "--data-dir", str(data_dir), "--force"]) == 0
    assert "found 3 files" in capsys.readouterr().out and api.calls == []


# -- archives: nesting, inner zips, damage, hashes -----------------------------------------------
def test_nested_folders_are_found_by_their_path_suffix(api, tmp_path):
    """TIMIT's archive nests timit_11/timit_11/; the data folder gets timit_11/<file>."""
    api.payload = zip_bytes(
        {
            "timit_11/timit_11/train_11.npy": b"train",
            "timit_11/timit_11/test_11.npy": b"test",
            "timit_11/timit_11/train_label_11.npy": b"labels",
        }
    )
    data_dir = tmp_path / "timit"
    download.download(Nested(), data_dir, say=lambda s: None)
    assert listing(data_dir) == {
        "timit_11/train_11.npy": b"train",
        "timit_11/test_11.npy": b"test",
        "timit_11/train_label_11.npy": b"labels",  # extra files under the same root come along
    }


def test_zips_inside_the_zip_are_extracted(api, tmp_path):
    api.payload = zip_bytes(
        {
            "train.csv.zip": zip_bytes({"train.csv": FILES["train.csv"]}),
            "test.csv": FILES["test.csv"],
        }
    )
    data_dir = tmp_path / "tiny"
    download.download(Tiny(), data_dir, say=lambda s: None)
    assert listing(data_dir) == FILES


def good_then(api, tmp_path, payload: bytes):
    """A valid download, then a second (forced) one that sends `payload`."""
    api.payload = zip_bytes(FILES)
    data_dir = tmp_path / "tiny"
    download.download(Tiny(), data_dir, say=lambda s: None)
    api.payload = payload
    return data_dir


def truncated(data: bytes) -> bytes:
    return data[: len(data) // 2]


def crc_damaged(data: bytes) -> bytes:
    """Flip a byte inside the second member's compressed data: the archive opens, reading fails."""
    raw = bytearray(data)
    offset = (
        zipfile.ZipFile(io.BytesIO(data)).infolist()[1].header_offset + 30 + len("test.csv") + 2
    )
    raw[offset] ^= 0xFF
    return bytes(raw)


@pytest.mark.parametrize(
    "damage",
    [truncated, crc_damaged, lambda d: b"<html>not a zip</html>"],
    ids=["truncated", "crc", "html"],
)
def test_a_damaged_archive_is_refused_and_the_earlier_files_stay(api, tmp_path, capsys, damage):
    new = {"train.csv": FILES["train.csv"], "test.csv": b"id,x\n" + b"9,9.9\n" * 2000}
    data_dir = good_then(api, tmp_path, damage(zip_bytes(new)))
    before = listing(data_dir)
    with pytest.raises(download.DataError, match="damaged or incomplete.*unchanged"):
        download.download(Tiny(), data_dir, force=True, say=lambda s: None)
    assert listing(data_dir) == before
    assert no_staging_left(data_dir)


def test_a_damaged_first_download_leaves_no_files(api, tmp_path):
    payload = zip_bytes({"train.csv": FILES["train.csv"], "test.csv": b"id,x\n" + b"1,2\n" * 5000})
    api.payload = crc_damaged(payload)
    data_dir = tmp_path / "tiny"
    with pytest.raises(download.DataError, match="damaged or incomplete"):
        download.download(Tiny(), data_dir, say=lambda s: None)
    assert not data_dir.exists() or listing(data_dir) == {}
    assert no_staging_left(data_dir)


def test_a_sha256_mismatch_is_refused_and_nothing_installed(api, covid_dir, covid_copy, capsys):
    members = {
        f: (covid_dir / f).read_bytes()
        for f in ("covid.train.csv", "covid.test.csv", "sampleSubmission.csv")
    }
    members["covid.train.csv"] = members["covid.train.csv"].replace(b"0.", b"1.", 1)
    api.payload = zip_bytes(members)
    before = listing(covid_copy)
    assert main(["covid", "--data-dir", str(covid_copy), "--force"]) == 2
    err = capsys.readouterr().err
    assert "covid.train.csv from the download has sha256" in err and "Nothing was installed" in err
    assert listing(covid_copy) == before


def test_a_download_lacking_an_expected_file_is_refused(api, tmp_path):
    api.payload = zip_bytes({"train.csv": FILES["train.csv"], "readme.txt": b"hi"})
    with pytest.raises(
        download.DataError, match=r"lacks test\.csv \(it holds readme\.txt, train\.csv\)"
    ):
        download.download(Tiny(), tmp_path / "tiny", say=lambda s: None)
    assert not (tmp_path / "tiny").exists()


def test_an_unsafe_member_path_is_refused(api, tmp_path):
    api.payload = zip_bytes({"../evil.csv": b"x", **FILES})
    with pytest.raises(download.DataError, match="unsafe path"):
        download.download(Tiny(), tmp_path / "tiny", say=lambda s: None)
    assert not (tmp_path / "evil.csv").exists()


# -- errors for people ---------------------------------------------------------------------------
def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} Client Error: for key {KEY}", response=response)


ERRORS = [
    (
        http_error(403),
        r'https://www\.kaggle\.com/competitions/ml2021spring-hw1/rules, click "I understand and accept"',
    ),
    (http_error(404), r"Kaggle has no competition 'ml2021spring-hw1' \(HTTP 404\)"),
    (http_error(401), r"rejected your credentials \(HTTP 401\)"),
    (
        requests.ConnectionError(f"Max retries exceeded (key {KEY})"),
        r"Cannot reach Kaggle while downloading ml2021spring-hw1",
    ),
    (
        OSError(errno.ENOSPC, "No space left on device"),
        r"No space left on the disk .*--data-dir on a disk with more room",
    ),
    (
        PermissionError(errno.EACCES, "Permission denied"),
        r"permission denied or read-only\): pass --data-dir",
    ),
]


@pytest.mark.parametrize(
    ("error", "message"), ERRORS, ids=["403", "404", "401", "offline", "disk-full", "unwritable"]
)
def test_each_failure_is_one_line_exit_2_without_the_key(api, tmp_path, capfd, error, message):
    api.error = error
    data_dir = tmp_path / "covid"
    assert main(["covid", "--data-dir", str(data_dir)]) == 2
    out, err = capfd.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert re.search(message, lines[0]), lines[0]
    assert KEY not in out + err
    assert no_staging_left(data_dir) and not data_dir.exists()


def test_no_credentials(api, tmp_path, monkeypatch, capfd):
    monkeypatch.delenv("KAGGLE_KEY")
    monkeypatch.delenv("KAGGLE_USERNAME")
    assert main(["covid", "--data-dir", str(tmp_path / "covid")]) == 2
    err = capfd.readouterr().err
    assert "No Kaggle credentials found" in err and "Create New Token" in err
    assert api.calls == []


def test_a_readable_kaggle_json_is_refused_without_leaking_it(api, tmp_path, monkeypatch, capfd):
    token = tmp_path / "home" / ".kaggle" / "kaggle.json"
    token.parent.mkdir(parents=True)
    token.write_text(f'{{"username": "tester", "key": "{KEY}"}}')
    token.chmod(0o644)
    assert main(["covid", "--data-dir", str(tmp_path / "covid")]) == 2
    out, err = capfd.readouterr()
    assert "chmod 600 ~/.kaggle/kaggle.json" in err and KEY not in out + err
    assert api.calls == []


def test_the_success_path_never_prints_the_key(api, covid_zip, tmp_path, capfd):
    api.payload = covid_zip
    assert main(["covid", "--data-dir", str(tmp_path / "covid")]) == 0
    out, err = capfd.readouterr()
    assert KEY not in out + err


def test_a_hung_download_times_out_quickly_and_leaves_nothing(api, tmp_path, capfd):
    api.hang_for = 30
    data_dir = tmp_path / "covid"
    started = time.perf_counter()
    assert main(["covid", "--data-dir", str(data_dir), "--timeout", "0.3"]) == 2
    assert time.perf_counter() - started < 5
    err = capfd.readouterr().err
    assert "downloading ml2021spring-hw1 timed out after 0.3 s" in err and "--timeout" in err
    assert no_staging_left(data_dir) and not data_dir.exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["covid", "--timeout", "0"], "--timeout must be a positive number"),
        (["nope"], "Unknown competition 'nope'"),
        ([], "the following arguments are required: competition"),
    ],
)
def test_bad_command_lines(api, argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_a_file_in_place_of_the_data_dir(api, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["covid", "--data-dir", str(tmp_path / "file")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_download_sh_is_a_thin_executable_wrapper():
    script = Path(__file__).resolve().parents[1] / "scripts" / "download.sh"
    assert os.access(script, os.X_OK)
    assert 'exec python -m pipeline.download "$@"' in script.read_text()


def test_the_module_runs_as_a_program(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.download", "demo", "--data-dir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "needs no download" in done.stdout


def test_the_clients_resume_marker_is_not_installed(api, tmp_path, monkeypatch):
    api.payload = zip_bytes(FILES)
    write = FakeApi.competition_download_files

    def with_marker(self, competition, path=None, force=False, quiet=True):
        write(self, competition, path, force, quiet)
        Path(path, f"{competition}.zip.kaggle-partial").write_text("{}")

    monkeypatch.setattr(FakeApi, "competition_download_files", with_marker)
    download.download(Tiny(), tmp_path / "tiny", say=lambda s: None)
    assert listing(tmp_path / "tiny") == FILES


def test_a_timit_like_archive_is_installed_where_the_timit_plugin_reads_it(api, tmp_path):
    """The real ml2021spring-hw2 archive nests timit_11/timit_11/; tiny arrays stand in."""

    def npy(array) -> bytes:
        buffer = io.BytesIO()
        np.save(buffer, array)
        return buffer.getvalue()

    rng = np.random.default_rng(0)
    api.payload = zip_bytes(
        {
            "timit_11/timit_11/train_11.npy": npy(rng.random((20, 429), dtype=np.float32)),
            "timit_11/timit_11/train_label_11.npy": npy(
                np.array([str(i % 39) for i in range(20)])
            ),
            "timit_11/timit_11/test_11.npy": npy(rng.random((7, 429), dtype=np.float32)),
        }
    )
    timit = load_competition("timit")
    data_dir = tmp_path / "ml2021spring-hw2"
    assert download.download(timit, data_dir, say=lambda s: None) == "downloaded"
    assert sorted(listing(data_dir)) == sorted(timit.files)
    assert timit.load_train(data_dir).X.shape == (20, 429)
    assert timit.load_test(data_dir).X.shape == (7, 429)
    assert download.download(timit, data_dir, say=lambda s: None) == "present"
