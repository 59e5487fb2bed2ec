"""The Kaggle client behind download and submit: credentials, deadlines, errors for people.

The `kaggle` package authenticates when it is imported (and can print, call the network or
exit), so it is imported only inside `get_api`, which runs in a worker thread under the same
deadline as the call itself. Tests replace `get_api` with a fake client. Every failure becomes
a UserError of one line that names the fix, with any secret scrubbed from it.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import stat
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pipeline.errors import UserError

T = TypeVar("T")

DOWNLOAD_TIMEOUT = 900.0  # seconds for a whole competition download (TIMIT is ~400 MB)
SUBMIT_TIMEOUT = 300.0  # seconds for uploading one submission file
TOKEN_HELP = (
    "get a token at kaggle.com -> Settings -> API -> Create New Token and save it as "
    "~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY (or "
    "KAGGLE_API_TOKEN) in the environment; on Colab add them as secrets (the key icon)"
)
COLAB_SECRETS = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY")
NETWORK_MODULES = ("requests", "urllib3", "http.client", "socket", "ssl")
PARTIAL_SUFFIX = ".kaggle-partial"  # the client's resume marker beside a file it is writing


class KaggleError(UserError):
    """A Kaggle call that failed for a reason the user can fix."""


class CredentialsError(KaggleError):
    """No token, a token others can read, or a token Kaggle rejects."""


class RulesNotAccepted(KaggleError):
    """HTTP 403: the user has not joined the competition."""


class CompetitionNotFound(KaggleError):
    """HTTP 404: no competition with this slug."""


class NetworkError(KaggleError):
    """Offline, Kaggle unreachable, or the call ran past its deadline."""


class DiskError(KaggleError):
    """Disk full or a folder we may not write to."""


@dataclass(frozen=True)
class Credentials:
    source: str  # where they came from, for messages (never the secret itself)
    secrets: tuple[str, ...] = field(default=(), repr=False)  # scrubbed from every message


def rules_url(slug: str) -> str:
    return f"https://www.kaggle.com/competitions/{slug}/rules"


# -- credentials ---------------------------------------------------------------------------------
def config_dir() -> Path:
    """Where the kaggle client looks for kaggle.json (its own rule, including XDG on Linux)."""
    if os.environ.get("KAGGLE_CONFIG_DIR"):
        return Path(os.environ["KAGGLE_CONFIG_DIR"])
    legacy = Path.home() / ".kaggle"
    if sys.platform.startswith("linux") and not legacy.exists():
        xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
        return Path(xdg) / "kaggle"
    return legacy


def find_credentials() -> Credentials:
    """The first usable source, in the client's order; CredentialsError naming the fix if none.

    A kaggle.json that group or others may read is refused even when another source exists:
    the key in it is exposed either way.
    """
    secrets: list[str] = []
    sources: list[str] = []
    json_path = config_dir() / "kaggle.json"
    data: dict = {}
    if json_path.is_file():
        if os.name == "posix" and stat.S_IMODE(json_path.stat().st_mode) & 0o077:
            raise CredentialsError(
                f"{_home_short(json_path)} can be read by other users of this machine; run "
                f"`chmod 600 {_home_short(json_path)}` and try again."
            )
        try:
            loaded = json.loads(json_path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):  # the client ignores a broken file too
            loaded = {}
        data = loaded if isinstance(loaded, dict) else {}
        secrets += [str(data[k]) for k in ("key", "token") if data.get(k)]
    env = os.environ
    token = env.get("KAGGLE_API_TOKEN")
    if token:
        secrets += [token, *_file_secret(token)]
        sources.append("KAGGLE_API_TOKEN")
    for path in (
        Path.home() / ".kaggle" / "access_token",
        Path.home() / ".kaggle" / "access_token.txt",
    ):
        if path.is_file():
            secrets += _file_secret(str(path))
            sources.append(_home_short(path))
    if env.get("KAGGLE_KEY"):
        secrets.append(env["KAGGLE_KEY"])
    # Like the client: kaggle.json first, KAGGLE_USERNAME / KAGGLE_KEY override its entries.
    if env.get("KAGGLE_USERNAME") and env.get("KAGGLE_KEY"):
        sources.append("KAGGLE_USERNAME/KAGGLE_KEY")
    elif (env.get("KAGGLE_USERNAME") or data.get("username")) and (
        env.get("KAGGLE_KEY") or data.get("key")
    ):
        sources.append(_home_short(json_path))
    if (Path.home() / ".kaggle" / "credentials.json").is_file():
        sources.append("~/.kaggle/credentials.json (kaggle auth login)")
    if env.get("KAGGLE_KERNEL_RUN_TYPE") and env.get("KAGGLE_API_V1_TOKEN"):
        secrets += _file_secret(env["KAGGLE_API_V1_TOKEN"])
        sources.append("the Kaggle notebook's token")
    if not sources:
        colab = _colab_secrets()
        if colab:
            os.environ.update(colab)  # the client (and any subprocess) reads the environment
            secrets += [v for k, v in colab.items() if k != "KAGGLE_USERNAME"]
            sources.append("Colab secrets")
    if not sources:
        raise CredentialsError(f"No Kaggle credentials found: {TOKEN_HELP}.")
    return Credentials(sources[0], tuple(s for s in dict.fromkeys(secrets) if len(s) >= 4))


def _file_secret(path: str) -> list[str]:
    try:
        if Path(path).is_file():
            text = Path(path).read_text(encoding="utf-8").strip()
            return [text] if text else []
    except (OSError, ValueError):
        pass
    return []


def _home_short(path: Path) -> str:
    home = str(Path.home())
    text = str(path)
    return "~" + text[len(home) :] if text.startswith(home + os.sep) else text


def _colab_secrets() -> dict[str, str]:
    """KAGGLE_* secrets of a Colab notebook, if this is one and the user granted access."""
    try:
        from google.colab import userdata  # type: ignore[import-not-found]
    except ImportError:
        return {}
    found = {}
    for name in COLAB_SECRETS:
        try:
            value = userdata.get(name)
        except Exception:  # SecretNotFoundError, NotebookAccessError: not given, not granted
            continue
        if value:
            found[name] = str(value)
    if "KAGGLE_API_TOKEN" not in found and not {"KAGGLE_USERNAME", "KAGGLE_KEY"} <= set(found):
        return {}
    return found


def scrub(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


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
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            return call_with_timeout(lambda: action(get_api()), timeout, what)
    except UserError as exc:
        raise type(exc)(scrub(str(exc), credentials.secrets)) from None
    except Exception as exc:
        error = translate(exc, slug, what, path)
        if error is None:
            raise
        raise type(error)(scrub(str(error), credentials.secrets)) from None


def translate(exc: BaseException, slug: str, what: str, path: Path | None = None):
    """The KaggleError for a client exception, or None for what looks like a bug."""
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None)
    detail = _first_line(exc)
    if isinstance(status, int) and status >= 400:
        if status == 401:
            return CredentialsError(
                f"Kaggle rejected your credentials (HTTP 401) while {what}: the token may be "
                f"expired or revoked; {TOKEN_HELP}."
            )
        if status == 403:
            return RulesNotAccepted(
                f"Kaggle refused access to {slug} (HTTP 403): open {rules_url(slug)}, click "
                '"I understand and accept" (join the competition), then run this again.'
            )
        if status == 404:
            return CompetitionNotFound(
                f"Kaggle has no competition {slug!r} (HTTP 404): check the slug in "
                f"https://www.kaggle.com/competitions/{slug} (the competition's `slug`)."
            )
        if status == 429:
            return NetworkError(
                f"Kaggle says too many requests (HTTP 429) while {what}; wait a minute and retry."
            )
        return NetworkError(f"Kaggle answered HTTP {status} while {what} ({detail}); retry later.")
    if _is_network_error(exc):
        return NetworkError(
            f"Cannot reach Kaggle while {what} ({_network_detail(exc)}): check your internet "
            "connection (on a Kaggle notebook turn Internet on in the settings panel) and try "
            "again."
        )
    if isinstance(exc, OSError):
        return disk_error(exc, path)
    if isinstance(exc, ValueError) and "does not match expected size" in str(exc):
        return NetworkError(f"The download broke off while {what} ({detail}); run it again.")
    return None


def disk_error(exc: OSError, path: Path | None = None) -> DiskError | None:
    """DiskError for a full disk or an unwritable folder; None for other OSErrors."""
    where = exc.filename or path or "the data folder"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskError(
            f"No space left on the disk while writing {where}: free some space or pass "
            "--data-dir on a disk with more room."
        )
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return DiskError(
            f"Cannot write {where} (permission denied or read-only): pass --data-dir with a "
            "folder you may write to."
        )
    return None


def _is_network_error(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    return any(
        cls.__module__.split(".")[0] in NETWORK_MODULES or cls.__module__ in NETWORK_MODULES
        for cls in type(exc).__mro__
    )


def _network_detail(exc: BaseException) -> str:
    """'ConnectionError: NameResolutionError' rather than urllib3's paragraph."""
    inner = exc.args[0] if exc.args else None
    reason = getattr(inner, "reason", None) or (
        inner if isinstance(inner, BaseException) else None
    )
    if reason is not None:
        return f"{type(exc).__name__}: {type(reason).__name__}"
    return f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


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

    response = run_kaggle(action, f"submitting to {slug}", slug, timeout, credentials, file)
    answer = str(getattr(response, "message", "") or response or "").strip()
    if answer.startswith("Could not submit"):  # the client's word for a failed upload
        raise NetworkError(f"Kaggle did not take the upload of {file} ({answer}); try again.")
    return answer
