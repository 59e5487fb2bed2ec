"""Credentials, deadlines and error mapping of the Kaggle client wrapper (no network, no account)."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import sys
import threading
import time
import types

import pytest
import requests

from pipeline.kaggle import client as kaggle_io
from pipeline.kaggle.client import (
    CompetitionNotFound,
    CredentialsError,
    DiskError,
    NetworkError,
    RulesNotAccepted,
)

KEY = "FAKEKEY-7f3a9c2e51d04b8e"  # recognisable: must never reach the terminal
TOKEN = "KGAT_fake0123456789abcdef"


@pytest.fixture
def home(monkeypatch, tmp_path):
    """An empty home folder and no KAGGLE_* variables: no credentials anywhere."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in list(os.environ):
        if name.startswith("KAGGLE_"):
            monkeypatch.delenv(name)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    return home


def write_token(folder, mode=0o600, key=KEY):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kaggle.json"
    path.write_text(json.dumps({"username": "tester", "key": key}))
    path.chmod(mode)
    return path


def http_error(status: int, text: str = "") -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(text or f"{status} Client Error", response=response)


# -- credentials ---------------------------------------------------------------------------------
def test_no_credentials_names_every_way_to_provide_them(home):
    with pytest.raises(CredentialsError) as info:
        kaggle_io.find_credentials()
    message = str(info.value)
    for part in [
        "kaggle.com -> Settings -> API -> Create New Token",
        "~/.kaggle/kaggle.json (chmod 600)",
        "KAGGLE_USERNAME and KAGGLE_KEY",
        "KAGGLE_API_TOKEN",
        "Colab",
    ]:
        assert part in message
    assert "\n" not in message


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_token_others_can_read_is_refused_with_the_chmod_to_run(home, mode):
    write_token(home / ".kaggle", mode)
    with pytest.raises(CredentialsError, match=r"`chmod 600 ~/\.kaggle/kaggle\.json`"):
        kaggle_io.find_credentials()


def test_a_private_kaggle_json_is_used_and_its_key_is_a_secret(home):
    write_token(home / ".kaggle")
    credentials = kaggle_io.find_credentials()
    assert credentials.source == "~/.kaggle/kaggle.json"
    assert KEY in credentials.secrets and KEY not in repr(credentials)


def test_kaggle_json_in_the_xdg_folder_is_found_like_the_client_does(home):
    if not sys.platform.startswith("linux"):
        pytest.skip("the XDG location is the client's rule on Linux only")
    write_token(home / ".config" / "kaggle")
    assert kaggle_io.find_credentials().source == "~/.config/kaggle/kaggle.json"


def test_kaggle_config_dir_wins(home, monkeypatch, tmp_path):
    write_token(tmp_path / "elsewhere", mode=0o644)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(CredentialsError, match="chmod 600"):
        kaggle_io.find_credentials()


@pytest.mark.parametrize(
    ("env", "source", "secret"),
    [
        ({"KAGGLE_USERNAME": "tester", "KAGGLE_KEY": KEY}, "KAGGLE_USERNAME/KAGGLE_KEY", KEY),
        ({"KAGGLE_API_TOKEN": TOKEN}, "KAGGLE_API_TOKEN", TOKEN),
    ],
)
def test_environment_variables(home, monkeypatch, env, source, secret):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    credentials = kaggle_io.find_credentials()
    assert credentials.source == source and secret in credentials.secrets


def test_a_key_without_a_username_is_not_enough(home, monkeypatch):
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    with pytest.raises(CredentialsError, match="No Kaggle credentials"):
        kaggle_io.find_credentials()


def test_a_username_in_kaggle_json_and_the_key_in_the_environment_combine(home, monkeypatch):
    folder = home / ".kaggle"
    folder.mkdir()
    (folder / "kaggle.json").write_text('{"username": "tester"}')
    (folder / "kaggle.json").chmod(0o600)
    monkeypatch.setenv("KAGGLE_KEY", KEY)
    credentials = kaggle_io.find_credentials()
    assert credentials.source == "~/.kaggle/kaggle.json" and KEY in credentials.secrets


def test_colab_secrets_are_read_and_exported(home, monkeypatch):
    class SecretNotFoundError(Exception):
        pass

    stored = {"KAGGLE_USERNAME": "tester", "KAGGLE_KEY": KEY}

    def get(name):
        if name not in stored:
            raise SecretNotFoundError(name)
        return stored[name]

    colab = types.ModuleType("google.colab")
    colab.userdata = types.SimpleNamespace(get=get)
    google = types.ModuleType("google")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    credentials = kaggle_io.find_credentials()
    assert credentials.source == "Colab secrets" and KEY in credentials.secrets
    assert os.environ["KAGGLE_KEY"] == KEY  # the client and subprocesses read the environment


def test_scrub_hides_every_secret():
    assert kaggle_io.scrub(f"auth {KEY} and {TOKEN}", (KEY, TOKEN)) == "auth *** and ***"


# -- deadlines -----------------------------------------------------------------------------------
def test_a_hung_call_ends_with_a_timeout_well_before_it_would_return():
    release = threading.Event()
    started = time.perf_counter()
    try:
        with pytest.raises(NetworkError, match=r"downloading x timed out after 0\.2 s"):
            kaggle_io.call_with_timeout(lambda: release.wait(10), 0.2, "downloading x")
        assert time.perf_counter() - started < 2
    finally:
        release.set()


def test_call_with_timeout_returns_the_value_and_reraises_errors():
    assert kaggle_io.call_with_timeout(lambda: 42, 5, "x") == 42
    with pytest.raises(ZeroDivisionError):
        kaggle_io.call_with_timeout(lambda: 1 / 0, 5, "x")


# -- error mapping -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("exc", "cls", "message"),
    [
        (
            http_error(401),
            CredentialsError,
            r"rejected your credentials \(HTTP 401\).*Create New Token",
        ),
        (
            http_error(403),
            RulesNotAccepted,
            r"HTTP 403.*https://www\.kaggle\.com/competitions/comp-x/rules.*\"I understand and accept\"",
        ),
        (http_error(404), CompetitionNotFound, r"no competition 'comp-x' \(HTTP 404\)"),
        (http_error(429), NetworkError, r"too many requests"),
        (
            http_error(503, "Service Unavailable"),
            NetworkError,
            r"HTTP 503 .*Service Unavailable.*retry later",
        ),
        (
            requests.ConnectionError("Max retries exceeded"),
            NetworkError,
            r"Cannot reach Kaggle.*internet connection",
        ),
        (requests.Timeout("read timed out"), NetworkError, r"Cannot reach Kaggle"),
        (ConnectionResetError(errno.ECONNRESET, "reset"), NetworkError, r"Cannot reach Kaggle"),
        (
            OSError(errno.ENOSPC, "No space left on device", "/d/x.zip"),
            DiskError,
            r"No space left.*/d/x\.zip.*--data-dir",
        ),
        (
            PermissionError(errno.EACCES, "Permission denied", "/d"),
            DiskError,
            r"Cannot write /d.*--data-dir",
        ),
        (OSError(errno.EROFS, "Read-only file system"), DiskError, r"read-only"),
        (
            ValueError("Downloaded file size (10) does not match expected size (20)"),
            NetworkError,
            r"broke off while downloading comp-x .*run it again",
        ),
    ],
)
def test_client_errors_become_one_line_that_names_the_fix(exc, cls, message):
    error = kaggle_io.translate(exc, "comp-x", "downloading comp-x")
    assert type(error) is cls
    assert "\n" not in str(error)
    assert re.search(message, str(error)), str(error)


def test_a_bug_is_not_disguised_as_a_user_error():
    assert kaggle_io.translate(ValueError("bad argument"), "x", "downloading x") is None
    assert kaggle_io.translate(OSError(errno.EBADF, "bad fd"), "x", "downloading x") is None


def test_run_kaggle_scrubs_the_key_from_errors_and_swallows_client_prints(monkeypatch, capfd):
    def noisy_api():
        print(f"config: key={KEY}")
        print(f"key={KEY}", file=sys.stderr)
        raise http_error(401, f"401 Unauthorized for key {KEY}")

    monkeypatch.setattr(kaggle_io, "get_api", noisy_api)
    credentials = kaggle_io.Credentials("test", (KEY,))
    with pytest.raises(CredentialsError) as info:
        kaggle_io.run_kaggle(lambda api: None, "downloading x", "x", 5, credentials)
    out, err = capfd.readouterr()
    assert KEY not in str(info.value) + out + err


def test_run_kaggle_scrubs_unmapped_user_errors_too(monkeypatch):
    def api():
        raise kaggle_io.NetworkError(f"echo {KEY}")

    monkeypatch.setattr(kaggle_io, "get_api", api)
    with pytest.raises(NetworkError) as info:
        kaggle_io.run_kaggle(lambda a: None, "x", "x", 5, kaggle_io.Credentials("t", (KEY,)))
    assert KEY not in str(info.value)


def test_the_real_client_is_imported_lazily_and_its_exit_becomes_a_credentials_error(home, capfd):
    """Importing kaggle authenticates, prints help and calls exit(1) without a token: none of
    that may escape (no network is touched without a token)."""
    credentials = kaggle_io.Credentials("test", ())
    with pytest.raises(CredentialsError, match="no usable credentials"):
        kaggle_io.run_kaggle(lambda api: None, "downloading x", "x", 60, credentials)
    out, err = capfd.readouterr()
    assert "Authentication required" not in out + err


def test_the_pipeline_never_imports_kaggle_at_import_time():
    code = (
        "import sys, pipeline.download, pipeline.submit, pipeline.kaggle.client, pipeline.run.provenance;"
        "print('kaggle' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "False", done.stderr


# -- failures the project does not translate -----------------------------------------------------
class SurprisingApi:
    """A client that fails in ways nobody planned for, with the key in the message."""

    def __init__(self, error: BaseException):
        self.error = error

    def competition_submit(self, *args, **kwargs):
        raise self.error


def _basic(user: str, key: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{key}".encode()).decode()


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (
            RuntimeError(f"unexpected payload for key={KEY}\nmore"),
            r"The Kaggle client failed while submitting to ml2021spring-hw1 \(RuntimeError: "
            r"unexpected payload for key=\*\*\*\); try again",
        ),
        (
            KeyError(f"Authorization: Basic {_basic('tester', KEY)}"),
            r"KeyError: .*Authorization: Basic \*\*\*",
        ),
        (SystemExit(f"401 - Unauthorized {KEY}"), r"RuntimeError: the Kaggle client called exit"),
    ],
)
@pytest.mark.parametrize("debug", ["", "1"])
def test_an_unexpected_client_failure_never_shows_the_key(
    monkeypatch, tmp_path, covid_dir, capfd, error, message, debug
):
    """Through `python -m pipeline.submit`: one line, exit 2, and the key appears nowhere in
    stdout, stderr or the run folder (with PIPELINE_DEBUG=1 the traceback is shown, scrubbed)."""
    from pipeline.submit import main
    from tests.conftest import use_fake_kaggle

    use_fake_kaggle(monkeypatch, tmp_path, SurprisingApi(error), KEY)
    monkeypatch.setenv("PIPELINE_DEBUG", debug)
    run = tmp_path / "run"
    run.mkdir()
    sample = (covid_dir / "sampleSubmission.csv").read_text()
    (run / "submission.csv").write_text(sample)
    code = main(["covid", str(run / "submission.csv"), "-m", "x", "--data-dir", str(covid_dir)])
    out, err = capfd.readouterr()
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: ") and re.search(message, last), err
    assert ("Traceback" in err) == bool(debug)
    if not debug:
        assert err.count("\n") == 1
    stored = "".join(p.read_text(errors="replace") for p in tmp_path.rglob("*") if p.is_file())
    for secret in (KEY, _basic("tester", KEY)):
        assert secret not in out + err + stored


def test_scrub_hides_authorization_values_and_longer_secrets_first():
    text = kaggle_io.scrub(f"Bearer abcdefgh1234 {KEY}x", (KEY[:6], KEY))
    assert text == "Bearer *** ***x"


def test_a_kaggle_json_that_cannot_be_read_is_named_not_missing(home, monkeypatch):
    """(Tests may run as root, who reads any file: the refusal is simulated at the read.)"""
    from pathlib import Path

    path = write_token(home / ".kaggle")
    real = Path.read_text

    def read_text(self, *args, **kwargs):
        if self == path:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", read_text)
    with pytest.raises(CredentialsError) as info:
        kaggle_io.find_credentials()
    assert str(info.value).startswith(
        "~/.kaggle/kaggle.json cannot be read (Permission denied); make it yours and private: "
        "`chown $USER ~/.kaggle/kaggle.json && chmod 600 ~/.kaggle/kaggle.json`."
    )


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads every file")
def test_a_kaggle_json_of_another_owner_is_named(home):
    path = write_token(home / ".kaggle", mode=0o000)
    with pytest.raises(CredentialsError, match="kaggle.json cannot be read"):
        kaggle_io.find_credentials()
    path.chmod(0o600)


@pytest.mark.parametrize(
    "text",
    [
        f"Basic {__import__('base64').b64encode(f'tester:{KEY}'.encode()).decode()}",
        __import__("urllib.parse").parse.quote(KEY, safe=""),
        KEY.encode().hex(),
        f"token={TOKEN}",
        "session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJl",
    ],
    ids=["basic", "escaped", "hex", "token-field", "jwt"],
)
def test_scrub_hides_encoded_secrets_and_tokens(text):
    shown = kaggle_io.scrub(f"echo: {text} end", (KEY,))
    assert "***" in shown and shown.startswith("echo: ") and shown.endswith(" end")
    for piece in (KEY, KEY[4:-4], TOKEN, "c2lnbmF0dXJl", KEY.encode().hex()[8:-8]):
        assert piece not in shown
