"""Kaggle credentials: found in the kaggle client's own order, never shown.

`find_credentials` says where the token comes from (for messages) and collects every secret it
saw, so that `scrub` can remove them from any text that reaches the terminal.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, quote_plus

from pipeline.kaggle.errors import TOKEN_HELP, CredentialsError

COLAB_SECRETS = ("KAGGLE_API_TOKEN", "KAGGLE_USERNAME", "KAGGLE_KEY")


@dataclass(frozen=True)
class Credentials:
    source: str  # where they came from, for messages (never the secret itself)
    secrets: tuple[str, ...] = field(default=(), repr=False)  # scrubbed from every message


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
            text = json_path.read_text(encoding="utf-8")
        except OSError as exc:  # not "no credentials": the file is there, we may not read it
            raise CredentialsError(
                f"{_home_short(json_path)} cannot be read ({exc.strerror or exc}); make it "
                f"yours and private: `chown $USER {_home_short(json_path)} && chmod 600 "
                f"{_home_short(json_path)}`."
            ) from None
        try:
            loaded = json.loads(text or "{}")
        except ValueError:  # the client ignores a broken file too
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


# an HTTP Authorization value (Basic base64(user:key), Bearer token) echoed by a client error
AUTH_VALUE = re.compile(r"\b(Basic|Bearer)\s+[A-Za-z0-9+/=._~-]{8,}")
# a secret-looking field of a URL, JSON or a header: key=..., "token": "...", api_key: ...
SECRET_FIELD = re.compile(
    r"(?i)(\b(?:api[_-]?key|key|token|access[_-]?token|secret|password|authorization)\b"
    r"[\"']?\s*[:=]\s*[\"']?)([^\s\"',;&}]{8,})"
)
TOKEN_SHAPES = re.compile(  # tokens by their shape: a JWT, a Kaggle API token
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{4,}|\bKGAT_[A-Za-z0-9_-]{8,}"
)
MIN_ENCODED = 8  # characters: a shorter encoded fragment could match ordinary text


def encodings(secret: str) -> set[str]:
    """The forms a secret takes in what a client returns: %-escaped (upper and lower case),
    form-encoded, hex, and base64 (standard and URL-safe) wherever it starts in the encoded
    bytes (after "user:" in a Basic header, say): the characters that depend on the secret
    alone, for each of the three alignments."""
    raw = secret.encode()
    forms = {secret, quote(secret, safe=""), quote_plus(secret), raw.hex(), raw.hex().upper()}
    forms.add(re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), quote(secret, safe="")))
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        for offset in range(3):
            text = encode(b"\0" * offset + raw).decode()
            start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
            forms.add(text[start:end])
    return {f for f in forms if len(f) >= MIN_ENCODED or f == secret}


def scrub(text: str, secrets: tuple[str, ...] | list[str]) -> str:
    """`text` with every secret and its encodings, and anything shaped like an Authorization
    value, a secret field or a token, as ***."""
    forms = set().union(*(encodings(s) for s in secrets)) if secrets else set()
    for form in sorted(forms, key=len, reverse=True):  # a longer one may hold a shorter
        text = text.replace(form, "***")
    text = AUTH_VALUE.sub(r"\1 ***", text)
    text = SECRET_FIELD.sub(r"\1***", text)
    return TOKEN_SHAPES.sub("***", text)
