"""Kaggle failures as errors for people: one line that names the fix.

`translate` turns what the kaggle client raises (HTTP errors, network errors, a broken
download, a full disk) into a KaggleError and returns None for anything else; `unexpected`
words that as one line too, since a client failure must never print a traceback (the key can
be in it).
"""

from __future__ import annotations

import errno
from pathlib import Path

from pipeline.errors import UserError

TOKEN_HELP = (
    "get a token at kaggle.com -> Settings -> API -> Create New Token and save it as "
    "~/.kaggle/kaggle.json (chmod 600), or set KAGGLE_USERNAME and KAGGLE_KEY (or "
    "KAGGLE_API_TOKEN) in the environment; on Colab add them as secrets (the key icon)"
)
NETWORK_MODULES = ("requests", "urllib3", "http.client", "socket", "ssl")


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


def rules_url(slug: str) -> str:
    return f"https://www.kaggle.com/competitions/{slug}/rules"


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


def unexpected(exc: BaseException, what: str) -> KaggleError:
    """One line for a client failure `translate` does not know (scrub it before showing)."""
    return KaggleError(
        f"The Kaggle client failed while {what} ({type(exc).__name__}: {_first_line(exc)}); "
        "try again, update it with `pip install -U kaggle` if it persists, or set "
        "PIPELINE_DEBUG=1 to see the traceback (secrets hidden)."
    )


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
