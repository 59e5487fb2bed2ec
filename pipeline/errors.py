"""Errors caused by what the user gave us (config, data, paths), as opposed to bugs.

Command-line entry points print these as one line and exit with code 2; everything else is a
bug and keeps its traceback.
"""


class UserError(Exception):
    """Something the user can fix; the message says what and how."""


class ConfigError(UserError, ValueError):
    """An unknown config key, a value of the wrong type or out of range."""


class DataError(UserError, ValueError):
    """Missing, malformed or inconsistent competition files."""


class TrainingDiverged(UserError):
    """The loss or the validation metric became NaN or infinite before any usable epoch."""


def require(ok: bool, key: str, expected: str, got: object) -> None:
    """ConfigError in scikit-learn's words unless `ok`: "key must be expected; got value."."""
    if not ok:
        raise ConfigError(f"{key} must be {expected}; got {got!r}.")
