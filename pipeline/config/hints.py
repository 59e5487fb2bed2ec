"""Values checked against the type hints of the config dataclasses: ints widen to float,
nothing else is converted, and a wrong value is named with what was expected."""

from __future__ import annotations

import types
import typing
from typing import Any

from pipeline.errors import ConfigError


def coerce(value: Any, hint: Any, path: str, source: str = "") -> Any:
    """Check `value` against a type hint; ints widen to float, nothing else is converted."""
    ok, result = _coerce(value, hint)
    if ok:
        return result
    origin = f" (from {source})" if source else ""
    raise ConfigError(f"{path} must be {describe(hint)}{origin}; got {value!r}.")


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    if hint is Any:
        return True, value
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        # try exact-type members first so 1 stays an int in "int | str" and 0.5 a float
        for arg in sorted(args, key=lambda a: a is float):
            ok, result = _coerce(value, arg)
            if ok:
                return True, result
        return False, None
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            return False, None
        (item_hint, *_) = typing.get_args(hint) or (Any,)
        items = []
        for item in value:
            ok, result = _coerce(item, item_hint)
            if not ok:
                return False, None
            items.append(result)
        return True, items
    if hint is type(None):
        return value is None, None
    if hint is bool:
        return isinstance(value, bool), value
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else None
    if hint is str:
        if value is None:
            return True, "none"  # model.norm=none reads as null; registries say "none"
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return True, str(value)  # e.g. precision=32 read as a number
        return isinstance(value, str), value
    return isinstance(value, hint), value


def describe(hint: Any) -> str:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(hint))
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return f"a list of {describe(item).removeprefix('a ').removeprefix('an ')}s"
    names = {bool: "true or false", int: "an int", float: "a float", str: "a string"}
    if hint is type(None):
        return "null"
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def hints(section: Any) -> dict[str, Any]:
    """The field hints of a dataclass (type), with choice metadata kept."""
    cls = section if isinstance(section, type) else type(section)
    return typing.get_type_hints(cls, include_extras=True)
