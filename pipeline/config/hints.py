"""Values checked against the type hints of the config dataclasses.

A hint is the whole contract of a key: `int`, `float | None`, `list[int]`, a fixed choice
`Literal["epoch", "step"]`, or a registry name `Annotated[str, MODELS]` (a `Registry` from
pipeline.model.registry, read at check time, so entries registered by a plug-in are valid names and
the error lists them). Choices are stored in their canonical spelling (`LeakyReLU` ->
`leaky_relu`); a wrong value gets "X must be one of: a, b, c; got 'y'." from the hint itself.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Annotated, Any, Literal

from pipeline.errors import ConfigError
from pipeline.model.registry import Registry


def coerce(value: Any, hint: Any, path: str, source: str = "") -> Any:
    """Check `value` against a type hint; ints widen to float, choices take their canonical
    spelling, nothing else is converted."""
    ok, result = _coerce(value, hint)
    if ok:
        return result
    origin = f" (from {source})" if source else ""
    got = "none" if value is None and _has_choice(hint) else value  # as it was typed
    raise ConfigError(f"{path} must be {describe(hint)}{origin}; got {got!r}.")


def hints(section: Any) -> dict[str, Any]:
    """The field hints of a dataclass (type), with choice metadata kept."""
    cls = section if isinstance(section, type) else type(section)
    return typing.get_type_hints(cls, include_extras=True)


def check_choices(section: Any, prefix: str = "") -> None:
    """Check (and canonicalise) the choice-typed keys of a section whose values were set in
    Python rather than read through `coerce` (dataclass defaults, code building a config)."""
    types_ = hints(section)
    for f in dataclasses.fields(section):
        if _has_choice(types_[f.name]):
            value = coerce(getattr(section, f.name), types_[f.name], f"{prefix}{f.name}")
            setattr(section, f.name, value)


def registry_of(hint: Any) -> Registry | None:
    """The Registry a registry-name hint is bound to (None for any other hint)."""
    if typing.get_origin(hint) is Annotated:
        return next((m for m in hint.__metadata__ if isinstance(m, Registry)), None)
    return None


def _has_choice(hint: Any) -> bool:
    origin = typing.get_origin(hint)
    if origin is Literal or registry_of(hint) is not None:
        return True
    return origin is not None and any(_has_choice(arg) for arg in typing.get_args(hint))


def _coerce(value: Any, hint: Any) -> tuple[bool, Any]:
    if hint is Any:
        return True, value
    origin = typing.get_origin(hint)
    if origin is Annotated:
        names = registry_of(hint)
        if names is None:
            return _coerce(value, typing.get_args(hint)[0])
        value = "none" if value is None else value  # model.norm=none reads as null
        return (True, names.canonical(value)) if value in names else (False, None)
    if origin is Literal:
        return _literal(value, typing.get_args(hint))
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
        return _is_number(value) and isinstance(value, int), value
    if hint is float:
        return (True, float(value)) if _is_number(value) else (False, None)
    if hint is str:
        if value is None:
            return True, "none"  # a string key set to none reads as null
        if _is_number(value):
            return True, str(value)  # e.g. a version or a name that YAML reads as a number
        return isinstance(value, str), value
    return isinstance(value, hint), value


def _literal(value: Any, choices: tuple) -> tuple[bool, Any]:
    if value is None:
        value = "none"  # train.compile=none reads as null
    elif _is_number(value) and str(value) in choices:
        value = str(value)  # train.precision=32 reads as a number
    ok = any(value == c and type(value) is type(c) for c in choices)
    return ok, value if ok else None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def describe(hint: Any) -> str:
    """'an int', 'a list of floats', 'one of: epoch, step', ... for messages."""
    origin = typing.get_origin(hint)
    if origin is Annotated:
        names = registry_of(hint)
        return describe(typing.get_args(hint)[0]) if names is None else _one_of(list(names))
    if origin is Literal:
        return _one_of(typing.get_args(hint))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in typing.get_args(hint))
    if origin in (list, tuple):
        (item,) = typing.get_args(hint)[:1] or (Any,)
        return f"a list of {describe(item).removeprefix('a ').removeprefix('an ')}s"
    names = {
        bool: "true or false",
        int: "an int",
        float: "a float",
        str: "a string",
        dict: "a mapping",
    }
    if hint is type(None):
        return "null"
    return names.get(hint, getattr(hint, "__name__", str(hint)))


def _one_of(choices) -> str:
    if len(choices) == 1:
        return str(choices[0])
    return f"one of: {', '.join(map(str, choices))}"
