"""Building a config in layers, later ones winning:
dataclass defaults <- competition defaults.yaml <- --config FILE <- key=value arguments.

Unknown keys, values of the wrong type and values out of range raise ConfigError naming the key,
what was expected, the valid choices and the layer the value came from. The fully resolved
config is saved with each run (`config.yaml`) and replays with `--config`.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
from pathlib import Path
from typing import Any

import yaml

from pipeline.config.hints import coerce, hints
from pipeline.config.keys import nest
from pipeline.config.sections import Config, NoFeatures
from pipeline.errors import ConfigError
from pipeline.model.configs import ModelConfig, config_class, takers_text


def build_config(
    features: Any = None,
    layers: list[tuple[str, dict]] = (),
    overrides: list[str] = (),
) -> Config:
    """Defaults, then each (source name, mapping) layer, then `key=value` overrides; checked."""
    cfg = Config(features=features if features is not None else NoFeatures())
    for source, mapping in [*layers, ("the command line", parse_overrides(overrides))]:
        apply_mapping(cfg, mapping, source)
    cfg.check()
    return cfg


def load_yaml(path: str | Path, what: str) -> dict:
    """A YAML mapping from a UTF-8 text file; ConfigError saying what the path is instead."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; give the path of a YAML file.")
    if not path.exists():
        raise ConfigError(f"{what} {path} does not exist.")
    if not path.is_file():
        raise ConfigError(f"{what} {path} is not a regular file; give the path of a YAML file.")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {exc.start}); save it as UTF-8 YAML."
        ) from None
    except OSError as exc:
        raise ConfigError(f"Cannot read {what.lower()} {path}: {exc.strerror or exc}.") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{what} {path} is not valid YAML{where}.") from None
    if data is None:  # an empty file: no keys
        return {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{what} {path} must hold a mapping of config keys (key: value lines); it holds "
            f"a {type(data).__name__}."
        )
    return data


def parse_overrides(items: list[str]) -> dict:
    """['model.dropout=0.3', 'cv.folds=10'] -> {'model': {'dropout': 0.3}, 'cv': {'folds': 10}}."""
    flat: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(
                f"Cannot read {item!r}: overrides are key=value pairs such as model.dropout=0.3."
            )
        flat[key] = parse_value(raw)
    return nest(flat)


def parse_value(raw: str) -> Any:
    """Python literals ('0.3', '[64, 32]', 'True'), YAML flow lists of bare words
    ('[tested_positive, illness]'), true/false/null; anything else is the string itself."""
    text = raw.strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none", "~"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        pass
    if text.startswith(("[", "{")):
        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            pass
    return text


def apply_mapping(obj: Any, mapping: dict, source: str, prefix: str = "") -> None:
    if not isinstance(mapping, dict):
        raise ConfigError(f"{prefix.rstrip('.') or 'config'} from {source} must be a mapping.")
    types_ = hints(obj)
    names = [f.name for f in dataclasses.fields(obj)]
    if isinstance(obj, ModelConfig):  # the name first: it chooses the section's keys
        mapping = dict(sorted(mapping.items(), key=lambda kv: kv[0] != "name"))
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if key not in names:
            raise ConfigError(_unknown_key_message(obj, path, key, names, prefix, source))
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            keys = [f.name for f in dataclasses.fields(current)]
            if not isinstance(value, dict):
                raise ConfigError(
                    f"{path} is a section ({', '.join(keys)}); set its keys, e.g. "
                    f"{path}.{keys[0]}=..."
                )
            if isinstance(current, ModelConfig) and "name" in value:
                current = _model_section(obj, key, value["name"], f"{path}.name", source)
            apply_mapping(current, value, source, prefix=f"{path}.")
        else:
            setattr(obj, key, coerce(value, types_[key], path, source))


def _model_section(parent: Any, key: str, name: Any, path: str, source: str) -> ModelConfig:
    """The model section as the dataclass model `name` was registered with: a layer that names
    another model swaps it, keeping the values of the keys both models read."""
    old = getattr(parent, key)
    name = coerce(name, hints(old)["name"], path, source)
    cls = config_class(name)
    if type(old) is not cls:
        kept = {f.name: getattr(old, f.name) for f in dataclasses.fields(old)}
        setattr(
            parent, key, cls(**{k: v for k, v in kept.items() if k in cls.__dataclass_fields__})
        )
    return getattr(parent, key)


def _unknown_key_message(
    obj: Any, path: str, key: str, names: list[str], prefix: str, source: str
) -> str:
    if isinstance(obj, ModelConfig):
        taken = takers_text(str(key), obj.name)
        if taken:
            return f"{taken[:-1]} (from {source})."
    guess = difflib.get_close_matches(str(key), names, n=1)
    hint = f" Did you mean {prefix}{guess[0]}?" if guess else ""
    where = f"under '{prefix.rstrip('.')}'" if prefix else "at the top level"
    return (
        f"Unknown config key '{path}' (from {source}).{hint} Valid keys {where}: "
        f"{', '.join(names)}."
    )


def to_dict(cfg: Any) -> dict:
    return dataclasses.asdict(cfg)


def to_yaml(cfg: Any, header: str = "") -> str:
    text = yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)
    return (header + "\n" if header else "") + text
