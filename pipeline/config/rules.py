"""Config rules that follow from how a registry entry was registered: which optimizer takes
optim.momentum, which schedule needs sched.milestones. An entry a plug-in registers gets the same
checks as the built-in ones. (Which model.* keys a model takes is its config dataclass:
pipeline.model.configs.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.errors import ConfigError
from pipeline.model.registry import OPTIMIZERS, SCHEDULERS


def check_optimizer_options(cfg) -> None:
    """Refuse options the chosen optimizer would ignore, naming those that take them."""
    for option in _changed(cfg, _options(OPTIMIZERS)):
        if option not in OPTIMIZERS.info(cfg.name)["options"]:
            raise ConfigError(
                f"optim.{option} does not apply to {cfg.name}; it applies to: "
                f"{', '.join(_takers(OPTIMIZERS, option))}. Remove it or choose one of those "
                "optimizers."
            )
    if cfg.nesterov and not cfg.momentum:
        raise ConfigError("optim.nesterov needs optim.momentum > 0 (e.g. optim.momentum=0.9).")


def check_scheduler_options(cfg) -> None:
    """Refuse a warm-up or options the chosen schedule would ignore, and ask for those it needs
    (each schedule's `no_warmup`, `options` and `needs`, given when it is registered)."""
    info = SCHEDULERS.info(cfg.name)
    if cfg.warmup and info["no_warmup"]:
        takers = SCHEDULERS.names(no_warmup="")
        raise ConfigError(
            f"sched.warmup does not combine with sched.name={cfg.name} ({info['no_warmup']}); "
            f"schedules that take a warm-up: {', '.join(takers)}."
        )
    for option in _changed(cfg, _options(SCHEDULERS)):
        if option not in info["options"]:
            takers = " or ".join(f"sched.name={n}" for n in _takers(SCHEDULERS, option))
            value = getattr(cfg, option)
            raise ConfigError(
                f"sched.{option}={value!r} does not apply to sched.name={cfg.name}: "
                f"sched.{option} applies to {takers} only. Remove it or choose one of those "
                "schedules."
            )
    for option, example in info["needs"].items():
        if not _changed(cfg, [option]):
            raise ConfigError(
                f"sched.name={cfg.name} needs sched.{option}, e.g. sched.{option}={example}."
            )


def _changed(section: Any, keys) -> list[str]:
    """Those of `keys` set away from their defaults, in the section's order."""
    defaults = type(section)()
    return [
        f.name
        for f in dataclasses.fields(section)
        if f.name in keys and getattr(section, f.name) != getattr(defaults, f.name)
    ]


def _options(registry) -> set[str]:
    """Every option that some entry of an optimizer or schedule registry takes."""
    return {option for name in registry for option in registry.info(name)["options"]}


def _takers(registry, option: str) -> list[str]:
    return [name for name in registry if option in registry.info(name)["options"]]
