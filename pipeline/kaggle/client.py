"""The Kaggle client behind download and submit: credentials, deadlines, errors for people.

The `kaggle` package authenticates when it is imported (and can print, call the network or
exit), so it is imported only inside `get_api`, which runs in a worker thread under the same
deadline as the call itself. Tests replace `get_api` with a fake client. Every failure, expected
or not, becomes a UserError of one line that names the fix, with any secret scrubbed from it;
PIPELINE_DEBUG=1 also prints the traceback, scrubbed too. Finding the
credentials lives in pipeline.kaggle.auth, translating the client's errors in
pipeline.kaggle.errors; their names are importable from here too.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import UserError
from pipeline.kaggle.auth import (  # noqa: F401 (this module is the facade)
    COLAB_SECRETS,
    Credentials,
    config_dir,
    find_credentials,
    scrub,
)
from pipeline.kaggle.errors import (  # noqa: F401 (this module is the facade)
    NETWORK_MODULES,
    TOKEN_HELP,
    CompetitionNotFound,
    CredentialsError,
    DiskError,
    KaggleError,
    NetworkError,
    RulesNotAccepted,
    disk_error,
    rules_url,
    translate,
    unexpected,
)

T = TypeVar("T")

DOWNLOAD_TIMEOUT = 900.0  # seconds for a whole competition download (TIMIT is ~400 MB)
SUBMIT_TIMEOUT = 300.0  # seconds for uploading one submission file
PARTIAL_SUFFIX = ".kaggle-partial"  # the client's resume marker beside a file it is writing


# -- the client ----------------------------------------------------------------------------------
def get_api() -> Any:
    """An authenticated kaggle.KaggleApi (tests replace this function with a fake client).

    Called inside the worker thread: importing `kaggle` authenticates, which may call the network.
    """
    from kaggle.api.kaggle_api_extended import KaggleApi

    api = KaggleApi()
    try:
        api.authenticate()
    except SystemExit:  # the client prints help and calls exit(1) when it finds no token
        raise CredentialsError(f"Kaggle found no usable credentials: {TOKEN_HELP}.") from None
    return api


def call_with_timeout(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run fn in a daemon thread; NetworkError if it has not returned after `timeout` seconds.

    A thread cannot be killed: a hung call is abandoned and ends with the process.
    """
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=work, name=f"kaggle: {what}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise NetworkError(
            f"{what} timed out after {timeout:g} s: Kaggle did not answer in time; check your "
            "connection and try again (or give more time with --timeout)."
        )
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def run_kaggle(
    action: Callable[[Any], T],
    what: str,
    slug: str,
    timeout: float,
    credentials: Credentials | None = None,
    path: Path | None = None,
) -> T:
    """get_api() then action(api), both under one deadline, every error translated and scrubbed.

    What the client prints goes to a buffer that is dropped (it may echo configuration); the
    streams are swapped from this thread, so that a timeout restores them at once.
    """
    credentials = credentials or find_credentials()
    sink = io.StringIO()

    def call() -> T:
        try:
            return action(get_api())
        except SystemExit as exc:  # the client may exit(); here that is a failed call
            raise RuntimeError(f"the Kaggle client called exit({exc.code!r})") from None

    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            return call_with_timeout(call, timeout, what)
    except UserError as exc:
        raise type(exc)(scrub(str(exc), credentials.secrets)) from None
    except Exception as exc:
        error = translate(exc, slug, what, path) or unexpected(exc, what)
        if os.environ.get("PIPELINE_DEBUG") == "1":
            shown = "".join(traceback.format_exception(exc))
            print(scrub(shown, credentials.secrets), file=sys.stderr, end="")
        raise type(error)(scrub(str(error), credentials.secrets)) from None


# -- the two calls the pipeline makes ------------------------------------------------------------
def download_competition(
    slug: str, folder: Path, timeout: float = DOWNLOAD_TIMEOUT, credentials=None
) -> list[Path]:
    """Download every file of a competition into `folder`; returns the files written there."""
    folder = Path(folder)

    def action(api) -> None:
        api.competition_download_files(slug, path=str(folder), force=True, quiet=True)

    run_kaggle(action, f"downloading {slug}", slug, timeout, credentials, folder)
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".") and not p.name.endswith(PARTIAL_SUFFIX)
    )


def submit_file(
    slug: str, file: Path, message: str, timeout: float = SUBMIT_TIMEOUT, credentials=None
) -> str:
    """Upload one submission file; returns Kaggle's answer."""

    def action(api):
        return api.competition_submit(str(file), message, slug, quiet=True)

    credentials = credentials or find_credentials()
    response = run_kaggle(action, f"submitting to {slug}", slug, timeout, credentials, file)
    # the answer is shown: scrubbed like any error (a client may echo the request in it)
    answer = scrub(str(getattr(response, "message", "") or response or ""), credentials.secrets)
    answer = " ".join(answer.split())
    if answer.startswith("Could not submit"):  # the client's word for a failed upload
        raise NetworkError(f"Kaggle did not take the upload of {file} ({answer}); try again.")
    return answer
