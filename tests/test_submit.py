"""python -m pipeline.submit: validated exactly as the writer validates, then sent through a fake
Kaggle client (no network, no account)."""

from __future__ import annotations

import re
import shutil
import threading
import time
import types

import pandas as pd
import pytest
import requests

from pipeline.submit import main
from tests.conftest import fake_kaggle_fixture

KEY = "FAKEKEY-5eb63bbbe01eeed093cb"  # recognisable: must never reach the terminal


class FakeApi:
    def __init__(self):
        self.calls: list[tuple] = []
        self.error: BaseException | None = None
        self.answer = types.SimpleNamespace(message="Successfully submitted to the competition")
        self.hang = threading.Event()
        self.hang_for = 0.0

    def competition_submit(self, file_name, message, competition, quiet=False, sandbox=False):
        self.calls.append((file_name, message, competition, quiet))
        if self.hang_for:
            self.hang.wait(self.hang_for)
        if self.error is not None:
            raise self.error
        return self.answer


@pytest.fixture
def api(monkeypatch, tmp_path):
    """A fake client behind kaggle_io.get_api, and credentials in the environment only."""
    yield from fake_kaggle_fixture(monkeypatch, tmp_path, FakeApi(), KEY)


@pytest.fixture
def covid_file(covid_dir, tmp_path):
    """A valid COVID submission: the sample's ids and order, numbers as values."""
    sample = pd.read_csv(covid_dir / "sampleSubmission.csv")
    path = tmp_path / "submission.csv"
    sample.assign(tested_positive=10.5).to_csv(path, index=False)
    return path


def covid_args(path, covid_dir, *extra):
    return ["covid", str(path), "-m", "blocked CV, 5 folds", "--data-dir", str(covid_dir), *extra]


def test_success_sends_the_file_with_the_right_arguments(api, covid_file, covid_dir, capfd):
    assert main(covid_args(covid_file, covid_dir)) == 0
    assert api.calls == [(str(covid_file), "blocked CV, 5 folds", "ml2021spring-hw1", True)]
    out, err = capfd.readouterr()
    assert f"Sent {covid_file} (893 rows, columns id, tested_positive) to ml2021spring-hw1" in out
    assert "message 'blocked CV, 5 folds'" in out and "Successfully submitted" in out
    assert "https://www.kaggle.com/competitions/ml2021spring-hw1/submissions" in out
    assert KEY not in out + err


def test_dry_run_validates_and_sends_nothing(api, covid_file, covid_dir, capsys):
    assert main(covid_args(covid_file, covid_dir, "--dry-run")) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"dry run: {covid_file} is a valid submission") and "Nothing sent" in out
    assert "893 rows" in out and api.calls == []


def test_dry_run_needs_no_credentials(api, covid_file, covid_dir, monkeypatch):
    monkeypatch.delenv("KAGGLE_KEY")
    assert main(covid_args(covid_file, covid_dir, "--dry-run")) == 0


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda f: f.rename(columns={"tested_positive": "target"}),
            r"has columns \['id', 'target'\]; expected exactly \['id', 'tested_positive'\]",
        ),
        (lambda f: f.iloc[:-5], r"has 888 rows; expected 893"),
        (lambda f: f.assign(id=f["id"] + 10_000), r"lacks 893 test ids"),
        (lambda f: f.iloc[::-1], r"another order"),
        (lambda f: f.assign(tested_positive="x"), r"every value must be a finite number"),
    ],
    ids=["header", "rows", "missing-ids", "order", "values"],
)
def test_a_bad_file_is_refused_with_the_validators_message(
    api, covid_file, covid_dir, capsys, edit, message
):
    edit(pd.read_csv(covid_file)).to_csv(covid_file, index=False)
    assert main(covid_args(covid_file, covid_dir)) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {covid_file} ")
    assert re.search(message, err), err
    assert api.calls == []


def test_without_a_sample_the_test_ids_decide(api, covid_file, covid_dir, tmp_path):
    data_dir = tmp_path / "no-sample"
    data_dir.mkdir()
    for name in ("covid.train.csv", "covid.test.csv"):
        shutil.copy(covid_dir / name, data_dir / name)
    assert main(covid_args(covid_file, data_dir)) == 0
    assert len(api.calls) == 1


def test_missing_competition_files_name_the_download_command(api, covid_file, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert main(covid_args(covid_file, tmp_path / "empty")) == 2
    assert "scripts/download.sh covid" in capsys.readouterr().err and api.calls == []


def test_a_missing_file(api, covid_dir, tmp_path, capsys):
    assert main(covid_args(tmp_path / "nope.csv", covid_dir)) == 2
    assert "nope.csv does not exist" in capsys.readouterr().err


def test_demo_is_validated_but_never_sent(api, demo_dir, tmp_path, capsys):
    path = tmp_path / "demo.csv"
    pd.read_csv(demo_dir / "sample_submission.csv").to_csv(path, index=False)
    args = ["demo", str(path), "-m", "x", "--data-dir", str(demo_dir)]
    assert main([*args, "--dry-run"]) == 0
    assert main(args) == 2
    assert "demo is built in, not a Kaggle competition" in capsys.readouterr().err
    assert api.calls == []


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} Client Error (key {KEY})", response=response)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            http_error(403),
            r"https://www\.kaggle\.com/competitions/ml2021spring-hw1/rules, click \"I understand and accept\"",
        ),
        (http_error(404), r"no competition 'ml2021spring-hw1'"),
        (http_error(401), r"rejected your credentials"),
        (
            requests.ConnectionError(f"offline {KEY}"),
            r"Cannot reach Kaggle while submitting to ml2021spring-hw1",
        ),
    ],
    ids=["403", "404", "401", "offline"],
)
def test_kaggle_errors_are_one_line_exit_2_without_the_key(
    api, covid_file, covid_dir, capfd, error, message
):
    api.error = error
    assert main(covid_args(covid_file, covid_dir)) == 2
    out, err = capfd.readouterr()
    assert len(err.strip().splitlines()) == 1 and re.search(message, err), err
    assert KEY not in out + err


def test_a_failed_upload_is_an_error(api, covid_file, covid_dir, capsys):
    api.answer = types.SimpleNamespace(message="Could not submit to competition")
    assert main(covid_args(covid_file, covid_dir)) == 2
    assert "Kaggle did not take the upload" in capsys.readouterr().err


def test_a_hung_upload_times_out(api, covid_file, covid_dir, capsys):
    api.hang_for = 30
    started = time.perf_counter()
    assert main(covid_args(covid_file, covid_dir, "--timeout", "0.3")) == 2
    assert time.perf_counter() - started < 5
    assert "submitting to ml2021spring-hw1 timed out after 0.3 s" in capsys.readouterr().err


def test_the_message_is_required(api, covid_file, covid_dir, capsys):
    assert main(["covid", str(covid_file)]) == 2
    assert "-m/--message" in capsys.readouterr().err


def _encoded(key: str) -> dict[str, str]:
    """The forms of the key a client's answer may echo (a request it shows, an auth header)."""
    import base64
    from urllib.parse import quote

    return {
        "plain": key,
        "basic": base64.b64encode(f"tester:{key}".encode()).decode(),
        "base64": base64.b64encode(key.encode()).decode(),
        "urlsafe": base64.urlsafe_b64encode(f"x{key}".encode()).decode(),
        "escaped": quote(f"{key}/?", safe=""),
        "field": f'"token": "{key}"',
    }


@pytest.mark.parametrize("form", list(_encoded(KEY)))
@pytest.mark.parametrize("taken", [True, False], ids=["taken", "refused"])
def test_kaggles_answer_is_shown_without_the_key_in_any_form(
    api, covid_file, covid_dir, capfd, form, taken
):
    echoed = _encoded(KEY)[form]
    said = "Successfully submitted" if taken else "Could not submit to competition"
    api.answer = types.SimpleNamespace(message=f"{said} (request: {echoed})")
    code = main(covid_args(covid_file, covid_dir))
    out, err = capfd.readouterr()
    assert code == (0 if taken else 2), err
    assert said in (out if taken else err)
    core = _encoded(KEY)[form].replace("=", "")[2:-2]  # what a form holds of the key alone
    assert echoed not in out + err and core not in out + err and KEY not in out + err
    if not taken:
        assert err.count("\n") == 1 and "Kaggle did not take the upload" in err
