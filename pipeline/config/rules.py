"""Config rules that follow from how a registry entry was registered: which optimizer takes
optim.momentum, which schedule needs sched.milestones, which models read frames. An entry a
plug-in registers gets the same checks as the built-in ones.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pipeline.errors import ConfigError
from pipeline.model.registry import MODELS, OPTIMIZERS, SCHEDULERS

FRAME_KEYS = ("channels", "kernel", "layers", "frame_dropout")  # model.* read by frame models
SEQUENCE_KEYS = ("window", "stride", "cell")  # model.* read by sequence models only
# frame keys a sequence model reads too (its recurrent layers: units, depth, dropout between)
SEQUENCE_SHARED = ("channels", "layers", "frame_dropout")


def model_keys(name: str) -> set[str]:
    """The frame and window keys (FRAME_KEYS, SEQUENCE_KEYS) model `name` reads."""
    info = MODELS.info(name)
    allowed = set(FRAME_KEYS) if info["frame"] else set()
    if info["sequence"]:
        allowed |= set(SEQUENCE_SHARED) | set(SEQUENCE_KEYS)
    return allowed


def forget_model_keys(cfg, layer: dict) -> None:
    """Before a config layer that names another model is applied: reset the keys an earlier
    layer set for the previous model that the new one does not read (a competition's
    defaults for its sequence model must not block `model.name=mlp` on the command line)."""
    try:
        name = MODELS.canonical(layer["name"])
    except (ValueError, TypeError):
        return  # an unknown name: applying the layer reports it
    if name == cfg.name:
        return
    defaults = type(cfg)()
    for key in set(FRAME_KEYS + SEQUENCE_KEYS) - model_keys(name) - set(layer):
        setattr(cfg, key, getattr(defaults, key))


def check_model_keys(cfg) -> None:
    """Refuse the frame keys for a model registered with neither frame=True nor sequence=True
    (and model.kernel for a sequence model), and the window keys for a non-sequence model."""
    allowed = model_keys(cfg.name)
    for key in _changed(cfg, FRAME_KEYS + SEQUENCE_KEYS):
        if key in allowed:
            continue
        if key in SEQUENCE_KEYS:
            takers = MODELS.names(sequence=True)
            kind = "the sequence models"
        elif key in SEQUENCE_SHARED:
            takers = sorted(set(MODELS.names(frame=True)) | set(MODELS.names(sequence=True)))
            kind = "the frame and sequence models"
        else:
            takers = MODELS.names(frame=True)
            kind = "the frame models"
        raise ConfigError(
            f"model.{key} applies to {kind} ({', '.join(takers)}), not to model.name={cfg.name}."
        )


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
