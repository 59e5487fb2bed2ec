"""The search space of `python -m pipeline.tune`: config paths mapped to Optuna distributions.

A competition's defaults.yaml holds it in a `search:` block (or `--space FILE` replaces it):

    search:
      optim.lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # float (a bound is a float)
      train.batch_size: {type: int, low: 32, high: 256, log: true}
      model.hidden: [[32], [64, 32], [128, 64]]         # a list: one of these values
      model:                                            # nested sections work too
        dropout: {low: 0.0, high: 0.5, step: 0.05}

Names are config paths, so a trial's parameters are config overrides and the best trial replays
with `python -m pipeline.train`. Each bound and choice is checked against the config key here:
its type, and its range by the key's own section (`check_ranges` in pipeline.config.sections,
so the range rules live in one place; every value of a short int range is checked, an even
model.kernel too). Whether a combination is possible (group norm dividing a width, ...) is
checked per trial.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)

from pipeline.config import Config, coerce, flatten, get_path, leaf, load_yaml, parse_value
from pipeline.errors import ConfigError

SPEC_KEYS = ("type", "low", "high", "log", "step", "choices")
TYPES = ("float", "int", "categorical")
EVERY_INT = 256  # int ranges with at most this many values have each value checked


@dataclass(frozen=True)
class Param:
    """One searched config key. Categorical choices that Optuna cannot store (lists) are kept
    as their JSON text in the study, e.g. "[64, 32]", and decoded back here."""

    path: str
    distribution: BaseDistribution
    decode: dict | None = None  # categorical: stored choice -> config value

    def suggest(self, trial: optuna.Trial) -> Any:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return self.value(trial.suggest_categorical(self.path, d.choices))
        if isinstance(d, IntDistribution):
            return trial.suggest_int(self.path, d.low, d.high, step=d.step, log=d.log)
        return trial.suggest_float(self.path, d.low, d.high, step=d.step, log=d.log)

    def value(self, stored: Any) -> Any:
        """The config value for a parameter value as the study stores it."""
        if self.decode is not None and stored in self.decode:
            return self.decode[stored]
        return stored

    def describe(self) -> str:
        d = self.distribution
        if isinstance(d, CategoricalDistribution):
            return "one of " + ", ".join(str(c) for c in d.choices)
        scale = ", log" if d.log else ""
        step = f", step {d.step}" if d.step not in (None, 1) else ""
        return f"{type(d.low).__name__} in [{d.low}, {d.high}]{scale}{step}"


class SearchSpace:
    def __init__(self, params: list[Param], source: str):
        self.params = params
        self.source = source

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.params]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """{config path: config value} for this trial."""
        return {p.path: p.suggest(trial) for p in self.params}

    def decode(self, stored: dict[str, Any]) -> dict[str, Any]:
        """A trial's stored params -> config values (params outside this space kept as is)."""
        by_path = {p.path: p for p in self.params}
        return {k: by_path[k].value(v) if k in by_path else v for k, v in stored.items()}

    def numeric_start(self, cfg: Config) -> dict[str, Any]:
        """The config's own values of the space's numeric keys, each moved into its range (a
        0.0 under a log range starts at its low end): a first trial that scores the
        defaults, so the study never ends below them."""
        start = {}
        for p in self.params:
            d = p.distribution
            if isinstance(d, (FloatDistribution, IntDistribution)):
                value = min(max(get_path(cfg, p.path), d.low), d.high)
                start[p.path] = int(value) if isinstance(d, IntDistribution) else float(value)
        return start

    def max_value(self, path: str) -> Any:
        """The largest value a numeric key can take in this space (None if not searched)."""
        for p in self.params:
            if p.path == path:
                d = p.distribution
                if isinstance(d, CategoricalDistribution):
                    numbers = [c for c in d.choices if isinstance(c, (int, float))]
                    return max(numbers) if numbers else None
                return d.high
        return None


def load_space(competition, space_file: Path | None, cfg: Config) -> SearchSpace:
    """The --space file, else the competition's `search:` block; checked against `cfg`."""
    if space_file is not None:
        raw = load_yaml(space_file, "Search space file")
        if set(raw) == {"search"}:
            raw = raw["search"] or {}
        source = f"--space {space_file}"
    else:
        raw = competition.search_space()
        source = f"the search: block of {competition.defaults_source}"
    if not raw:
        raise ConfigError(
            f"No search space: {source} is empty. Add config keys to search, e.g. "
            "optim.lr: {low: 1.0e-4, high: 1.0e-2, log: true}, or pass --space FILE."
        )
    return parse_space(raw, cfg, source)


# python -m pipeline.tune COMP --reference lightgbm: LightGBM's settings on the run's folds,
# around the defaults (pipeline.config.sections.LightGBMConfig), the ranges that Optuna's
# LightGBM tuner and the GBDT literature search
REFERENCE_SPACES = {
    "lightgbm": {
        "lightgbm.learning_rate": {"low": 0.01, "high": 0.2, "log": True},
        "lightgbm.num_leaves": {"low": 4, "high": 256, "log": True},
        "lightgbm.min_child_samples": {"low": 2, "high": 100, "log": True},
        "lightgbm.subsample": {"low": 0.5, "high": 1.0},
        "lightgbm.colsample_bytree": {"low": 0.3, "high": 1.0},
        "lightgbm.reg_lambda": {"low": 1.0e-3, "high": 10.0, "log": True},
        "lightgbm.reg_alpha": {"low": 1.0e-3, "high": 10.0, "log": True},
    }
}


def load_reference_space(reference: str, space_file: Path | None, cfg: Config) -> SearchSpace:
    """The search space of `pipeline.tune --reference NAME`: the --space file, else the built-in
    one; only the reference's own config section (`lightgbm.*`), since no network trains."""
    if space_file is not None:
        space = load_space(None, space_file, cfg)
    else:
        space = parse_space(REFERENCE_SPACES[reference], cfg, f"--reference {reference}")
    others = [p for p in space.paths if not p.startswith(f"{reference}.")]
    if others:
        raise ConfigError(
            f"--reference {reference} searches {reference}.* keys only (its trials train no "
            f"network); the space also has {', '.join(others)}."
        )
    return space


def parse_space(raw: dict, cfg: Config, source: str) -> SearchSpace:
    if not isinstance(raw, dict):
        raise ConfigError(f"The search space ({source}) must be a mapping of config keys.")
    params = []
    is_entry = lambda spec: bool(set(spec) & set(SPEC_KEYS))  # noqa: E731
    try:
        flat = flatten(raw, is_leaf=is_entry)
    except ConfigError as exc:
        raise ConfigError(f"Search space ({source}): {exc}") from None
    for path, spec in flat.items():
        if path in {p.path for p in params}:
            raise ConfigError(f"Search space ({source}): {path} is given twice.")
        params.append(_param(path, spec, cfg, source))
    return SearchSpace(params, source)


def _param(path: str, spec: Any, cfg: Config, source: str) -> Param:
    where = f"Search space ({source}): {path}"
    hint = _hint(cfg, path, where)
    if isinstance(spec, list):
        spec = {"type": "categorical", "choices": spec}
    if not isinstance(spec, dict):
        raise ConfigError(
            f"{where}: give a range such as {{low: 0.0, high: 0.5}} or a list of choices; got "
            f"{spec!r} (a fixed value is a config override, not a search)."
        )
    unknown = set(spec) - set(SPEC_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; a search entry "
            f"takes {', '.join(SPEC_KEYS)}."
        )
    kind = spec.get("type") or ("categorical" if "choices" in spec else _infer_kind(spec, hint))
    if kind not in TYPES:
        raise ConfigError(f"{where}: type must be one of: {', '.join(TYPES)}; got {kind!r}.")
    if kind == "categorical":
        return _categorical(path, spec, hint, where, cfg)
    for key in ("low", "high"):
        if key not in spec:
            raise ConfigError(f"{where}: a {kind} range needs low and high.")
    extra = set(spec) - {"type", "low", "high", "log", "step"}
    if extra:
        raise ConfigError(f"{where}: a {kind} range takes low, high, log, step; not choices.")
    low, high = _number(spec["low"], kind, where), _number(spec["high"], kind, where)
    step = None if spec.get("step") is None else _number(spec["step"], kind, where)
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false; got {log!r}.")
    if not low < high:
        raise ConfigError(f"{where}: low must be below high; got low={low}, high={high}.")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0; got low={low}.")
    if step is not None and step <= 0:
        raise ConfigError(f"{where}: step must be > 0; got {step}.")
    if log and step is not None and not (kind == "int" and step == 1):
        raise ConfigError(f"{where}: use either log or step, not both.")
    for name, bound in (("low", low), ("high", high)):
        check_in_range(cfg, path, coerce(bound, hint, path, source), f"{where}: {name}={bound}")
    if kind == "int" and (high - low) // (step or 1) < EVERY_INT:
        for value in range(low, high + 1, step or 1):
            check_in_range(cfg, path, value, f"{where}: value {value} of the range")
    if kind == "int":
        return Param(path, IntDistribution(low, high, log=log, step=step or 1))
    return Param(path, FloatDistribution(low, high, log=log, step=step))


def check_in_range(cfg: Config, path: str, value: Any, what: str) -> None:
    """ConfigError unless `value` lies in the valid range of the key at `path`: set on a copy
    of `cfg`, checked by its section's range rules (rules tying it to other keys, which may be
    searched too, are left to each trial)."""
    trial = copy.deepcopy(cfg)
    section, key, _ = leaf(trial, path, any_model=True)
    setattr(section, key, value)
    try:
        getattr(section, "check_ranges", section.check)()
    except ConfigError as exc:
        raise ConfigError(f"{what} is outside the valid values: {exc}") from None


def _categorical(path: str, spec: dict, hint: Any, where: str, cfg: Config) -> Param:
    if set(spec) - {"type", "choices"}:
        raise ConfigError(f"{where}: a categorical entry takes only choices.")
    choices = spec.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ConfigError(f"{where}: choices must be a non-empty list; got {choices!r}.")
    stored, decode = [], {}
    for choice in choices:
        if isinstance(choice, str):
            choice = parse_value(choice)  # "1e-4" (PyYAML reads it as text) -> 0.0001
        value = coerce(choice, hint, path, where.split(": ")[0])
        check_in_range(cfg, path, value, f"{where}: choice {choice!r}")
        key = value if _storable(value) else json.dumps(value)
        if key in decode:
            raise ConfigError(f"{where}: choice {key!r} is listed twice.")
        decode[key] = value
        stored.append(key)
    return Param(path, CategoricalDistribution(stored), decode)


def _storable(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str))


def _infer_kind(spec: dict, hint: Any) -> str:
    """int for a key that takes ints and not floats (model.layers), else float."""
    members = typing.get_args(hint) or (hint,)
    return "int" if int in members and float not in members else "float"


def _number(value: Any, kind: str, where: str) -> int | float:
    if isinstance(value, str):  # PyYAML reads 1e-4 (no dot) as text
        with contextlib.suppress(ValueError):
            value = float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: bounds must be finite numbers; got {value!r}.")
    if kind == "int":
        if float(value) != int(value):
            raise ConfigError(f"{where}: an int range needs whole-number bounds; got {value!r}.")
        return int(value)
    return float(value)


def _hint(cfg: Config, path: str, where: str) -> Any:
    """The type hint of a config leaf; ConfigError for an unknown path or a section."""
    try:
        return leaf(cfg, path, any_model=True)[2]
    except ConfigError as exc:  # "model.x: unknown config key ..." -> "Search space (...): ..."
        raise ConfigError(f"{where.rsplit(': ', 1)[0]}: {exc}") from None


def to_override(path: str, value: Any) -> str:
    """A `key=value` command-line override that parses back to `value`."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, str) and parse_value(value) == value:
        text = value
    else:
        text = repr(value)
    return f"{path}={text}"
