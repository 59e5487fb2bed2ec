"""Dotted config keys ('model.dropout'): nesting, flattening, merging and reading leaves."""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.config.hints import hints
from pipeline.errors import ConfigError
from pipeline.model.configs import ModelConfig, config_class, takers


def nest(flat: dict[str, Any]) -> dict:
    """{'model.dropout': 0.1} -> {'model': {'dropout': 0.1}}."""
    tree: dict = {}
    for path, value in flat.items():
        node = tree
        *parents, leaf = path.split(".")
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{path} is given twice with different shapes.")
        node[leaf] = value
    return tree


def flatten(tree: dict, prefix: str = "", is_leaf=None) -> dict[str, Any]:
    """{'model': {'dropout': 0.1}} -> {'model.dropout': 0.1}; `is_leaf(value)` may keep a
    mapping whole (a search entry such as {low: 0, high: 1})."""
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        inner = (
            flatten(value, f"{path}.", is_leaf)
            if isinstance(value, dict) and value and not (is_leaf and is_leaf(value))
            else {path: value}
        )
        for name, item in inner.items():
            if name in out:
                raise ConfigError(f"{name} is given twice.")
            out[name] = item
    return out


def merge(into: dict, other: dict) -> dict:
    """Deep-merge `other` into `into` (later wins), returning `into`."""
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value
    return into


def leaf(cfg: Any, path: str, any_model: bool = False) -> tuple[Any, str, Any]:
    """(section object, key, type hint) of a config leaf; ConfigError naming the valid keys for
    an unknown path, and for a path that names a section. any_model: a model.* key that the
    config's model does not read, but another registered model does, is that model's (a fresh
    section of its dataclass): a search space that also searches model.name may hold it."""
    node: Any = cfg
    parts = path.split(".")
    for i, part in enumerate(parts):
        names = (
            [f.name for f in dataclasses.fields(node)] if dataclasses.is_dataclass(node) else []
        )
        if any_model and part not in names and isinstance(node, ModelConfig):
            other = takers(part)
            if other:
                node = config_class(other[0])()
                names = [f.name for f in dataclasses.fields(node)]
        if part not in names:
            prefix = ".".join(parts[:i])
            under = f"under '{prefix}'" if prefix else "at the top level"
            raise ConfigError(
                f"{path}: unknown config key. Valid keys {under}: {', '.join(names)}."
            )
        if i == len(parts) - 1:
            if dataclasses.is_dataclass(getattr(node, part)):
                raise ConfigError(f"{path} is a section; name one of its keys, e.g. {path}.<key>.")
            return node, part, hints(node)[part]
        node = getattr(node, part)
    raise AssertionError("unreachable")


def get_path(cfg: Any, path: str) -> Any:
    """cfg.model.dropout for 'model.dropout'; ConfigError for an unknown path."""
    node, key, _ = leaf(cfg, path)
    return getattr(node, key)
