"""Open registries: name -> component (models, activations, norms, inits, optimizers, schedules).

In the style of timm's `register_model`: a `Registry` maps names to entries (a builder, a class,
a function) and keeps facts about each entry given at registration, e.g.
`register_model("conv", frame=True)`. A plug-in or a notebook adds its own entries the same way
and selects them by name in the config (`model.name=mine`).

Names are normalised (case, '-' and '_' ignored), so `LeakyReLU`, `leaky_relu` and `leaky-relu`
are one entry, and the registry's own spelling is what a config stores. An unknown name raises
ValueError listing the valid ones.

This module imports no torch. Each registry's built-in entries live in the modules that define them
(`builtins="pipeline.model.layers"`) and are imported on the registry's first use, so the config
checks names against these objects without importing the models itself. Tests parametrize over the
registries, so a new entry is tested the day it is added.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator, Mapping
from types import MappingProxyType
from typing import Any

_MISSING = object()


def normalize(name: str | None) -> str:
    if name is None:
        return "none"
    return str(name).lower().replace("_", "").replace("-", "")


class Registry(Mapping[str, Any]):
    """A read-only mapping of names (in registration order) to entries, open to `register`.

    kind: the word used in messages ("model"); builtins: the module (or modules, in order) that
    register the built-in entries, imported on first use; info: the facts an entry may be
    registered with, and their defaults (an unknown fact is refused, so a typo does not pass
    silently).
    """

    def __init__(
        self, kind: str, builtins: str | tuple[str, ...] | None = None, info: Mapping | None = None
    ):
        self.kind = kind
        self.builtins = builtins
        self._pending = builtins  # imported on first use
        self._defaults = dict(info or {})
        self._entries: dict[str, Any] = {}
        self._origin: dict[str, str] = {}  # the module that registered each name
        self._info: dict[str, Mapping[str, Any]] = {}
        self._spelling: dict[str, str] = {}  # normalised name -> registered spelling

    # -- adding entries -------------------------------------------------------------------------
    def register(self, name: str, entry: Any = _MISSING, /, *, replace: bool = False, **info):
        """Add `entry` under `name`; without an entry, a decorator (`@register_model("mine")`).

        Registering a name again from the same module and function (a re-run notebook cell, a
        reloaded module) replaces the entry; taking another module's name needs replace=True.
        """
        if entry is _MISSING:
            return lambda obj: self.register(name, obj, replace=replace, **info)
        unknown = set(info) - set(self._defaults)
        if unknown:
            takes = ", ".join(self._defaults) or "no facts"
            raise TypeError(
                f"A {self.kind} entry takes {takes}; got {', '.join(sorted(unknown))}."
            )
        if not isinstance(name, str) or not normalize(name):
            raise ValueError(f"A {self.kind} name must be a non-empty string; got {name!r}.")
        self._load()
        key = normalize(name)
        if key in self._spelling:
            old = self._spelling[key]
            if not (replace or _same_source(self._entries[old], entry)):
                raise ValueError(
                    f"A {self.kind} named {old!r} is already registered; choose another name, "
                    "or pass replace=True to replace it."
                )
            if old != name:  # the same spelling is replaced in place, keeping its listing rank
                self.unregister(old)
        self._origin.setdefault(name, _caller_module())
        self._spelling[key] = name
        self._entries[name] = entry
        self._info[name] = MappingProxyType({**self._defaults, **info})
        return entry

    def unregister(self, name: str) -> None:
        spelling = self.canonical(name)
        del self._spelling[normalize(spelling)], self._entries[spelling], self._info[spelling]
        self._origin.pop(spelling, None)

    # -- reading --------------------------------------------------------------------------------
    def canonical(self, name: str | None) -> str:
        """The registry's own spelling of `name`; ValueError listing the names if unknown."""
        self._load()
        try:
            return self._spelling[normalize(name)]
        except KeyError:
            raise ValueError(_unknown(self.kind, name, self)) from None

    def lookup(self, name: str | None) -> Any:
        return self._entries[self.canonical(name)]

    def info(self, name: str | None) -> Mapping[str, Any]:
        """The facts `name` was registered with (the registry's defaults for those not given)."""
        return self._info[self.canonical(name)]

    def names(self, **facts: Any) -> list[str]:
        """Registered names, optionally only those whose facts match: `names(frame=True)`."""
        self._load()
        kept = [n for n, info in self._info.items() if all(info[k] == v for k, v in facts.items())]
        return sorted(kept, key=self._rank)  # stable: the order of registration within a rank

    def _rank(self, name: str) -> int:
        """The built-in modules' entries in the order of `builtins`, then everyone else's: the
        listing does not depend on which module happened to be imported first."""
        modules = (self.builtins,) if isinstance(self.builtins, str) else self.builtins or ()
        module = self._origin.get(name)
        return modules.index(module) if module in modules else len(modules)

    def __contains__(self, name: object) -> bool:
        self._load()
        return (name is None or isinstance(name, str)) and normalize(name) in self._spelling

    def __getitem__(self, name: str) -> Any:
        if name not in self:
            raise KeyError(name)
        return self.lookup(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self.names())

    # a registry is one object, not a value: identity equality keeps it usable in type hints
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, builtins={self.builtins!r})"

    def _load(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None  # first, so its registrations pass
            try:
                for module in (pending,) if isinstance(pending, str) else pending:
                    importlib.import_module(module)
            except BaseException:
                self._pending = pending
                raise


def _caller_module() -> str:
    """The name of the module whose code called register (past this module's own frames)."""
    frame = inspect.currentframe()
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back
    return frame.f_globals.get("__name__", "") if frame is not None else ""


def _same_source(old: Any, new: Any) -> bool:
    """The same object, or a function/class of the same name in the same module (defined again
    by a re-run notebook cell or a reloaded module)."""
    if old is new:
        return True
    if not (inspect.isfunction(new) or inspect.isclass(new)) or new.__name__ == "<lambda>":
        return False
    where = (new.__module__, new.__qualname__)
    return (getattr(old, "__module__", None), getattr(old, "__qualname__", None)) == where


def _unknown(kind: str, name: Any, names: Any) -> str:
    return f"Unknown {kind} {name!r}; choose one of: {', '.join(names)}."


def lookup(table: Mapping[str, Any], kind: str, name: str | None) -> Any:
    """The entry of `name` in a Registry or a plain dict (normalised names)."""
    if isinstance(table, Registry):
        return table.lookup(name)
    return table[canonical(table, kind, name)]


def canonical(table: Mapping[str, Any], kind: str, name: str | None) -> str:
    """The table's own spelling of `name` (raises like a lookup when it is unknown)."""
    if isinstance(table, Registry):
        return table.canonical(name)
    for entry in table:
        if normalize(entry) == normalize(name):
            return entry
    raise ValueError(_unknown(kind, name, table))


# --- the pipeline's registries ------------------------------------------------------------------
# models: builder(cfg.model, in_features, out_features, frame_dim) -> nn.Module; config: its
# config dataclass (None: ModelConfig); stacks: fn(K models) -> Stacked (pipeline.model.stacking);
# numeric: the builder also takes numeric=, how many leading columns of a row are numeric values
MODELS = Registry(
    "model",
    builtins=(
        "pipeline.model.mlp",
        "pipeline.model.frames",
        "pipeline.model.sequence",
        "pipeline.model.tabm",
    ),
    info={"frame": False, "sequence": False, "config": None, "stacks": None, "numeric": False},
)
# activations: factory(leaky_slope) -> nn.Module; gain: torch.nn.init.calculate_gain's name
ACTIVATIONS = Registry("activation", builtins="pipeline.model.layers", info={"gain": "linear"})
# norms: factory(num_features, groups, channel_axis) -> nn.Module
NORMS = Registry("norm", builtins="pipeline.model.layers")
# inits: fn(weight, gain) filling the weight in place, or None to keep PyTorch's own
INITS = Registry("init", builtins="pipeline.model.layers")
# optimizers: a torch.optim.Optimizer class; options: the optional optim.* keys it takes
OPTIMIZERS = Registry("optimizer", builtins="pipeline.model.optim", info={"options": ()})
# schedules: see pipeline.model.optim for the two kinds of entry and their facts
SCHEDULERS = Registry(
    "scheduler",
    builtins="pipeline.model.optim",
    info={"builder": False, "options": (), "needs": {}, "no_warmup": ""},
)
# same-folds references: fit(fold) -> (validation, test predictions); title: the summary's
# name, a string or a function of the task (pipeline.ensemble.references)
REFERENCES = Registry("reference", builtins="pipeline.ensemble.references", info={"title": None})

register_model = MODELS.register
register_activation = ACTIVATIONS.register
register_norm = NORMS.register
register_init = INITS.register
register_optimizer = OPTIMIZERS.register
register_scheduler = SCHEDULERS.register
register_reference = REFERENCES.register


def get_activation(name: str | None, slope: float = 0.01):
    return ACTIVATIONS.lookup(name)(slope)


def list_activations() -> list[str]:
    return ACTIVATIONS.names()


def activation_gain(name: str | None, slope: float = 0.01) -> float:
    """The init gain for an activation (its registered `gain`, as torch's calculate_gain)."""
    from torch import nn  # only ever called while building a model

    gain = ACTIVATIONS.info(name)["gain"]
    return nn.init.calculate_gain(gain, slope if gain == "leaky_relu" else None)


def get_norm(name: str | None, num_features: int, groups: int = 1, channel_axis: bool = False):
    return NORMS.lookup(name)(num_features, groups, channel_axis)


def list_norms() -> list[str]:
    return NORMS.names()


def get_init(name: str | None):
    return INITS.lookup("default" if name is None else name)


def list_inits() -> list[str]:
    return INITS.names()
