"""Optimizers, learning-rate schedules and weight penalties/constraints, built from config.

OPTIMIZERS and SCHEDULERS are registries like those in `pipeline.registry`. Schedules with a
closed form are LambdaLR multipliers written as the formula (tests compare them step by step);
plateau and one-cycle are PyTorch's own.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from pipeline.errors import ConfigError
from pipeline.registry import canonical, lookup


@dataclass(frozen=True)
class OptimizerSpec:
    cls: type[torch.optim.Optimizer]
    options: tuple[str, ...]  # the optional config keys this optimizer takes


OPTIMIZERS: dict[str, OptimizerSpec] = {
    "sgd": OptimizerSpec(torch.optim.SGD, ("momentum", "nesterov", "foreach")),
    "adagrad": OptimizerSpec(torch.optim.Adagrad, ("eps", "foreach")),
    "rmsprop": OptimizerSpec(torch.optim.RMSprop, ("momentum", "alpha", "eps", "foreach")),
    "adadelta": OptimizerSpec(torch.optim.Adadelta, ("rho", "eps", "foreach")),
    "adam": OptimizerSpec(torch.optim.Adam, ("betas", "eps", "foreach")),
    "adamw": OptimizerSpec(torch.optim.AdamW, ("betas", "eps", "foreach")),
    "nadam": OptimizerSpec(torch.optim.NAdam, ("betas", "eps", "foreach")),
    "radam": OptimizerSpec(torch.optim.RAdam, ("betas", "eps", "foreach")),
}
_OPTION_DEFAULTS = {
    "momentum": None,
    "nesterov": False,
    "betas": None,
    "alpha": None,
    "rho": None,
    "eps": None,
    "foreach": None,
}


def canonical_optimizer(name: str) -> str:
    return canonical(OPTIMIZERS, "optimizer", name)


def list_optimizers() -> list[str]:
    return list(OPTIMIZERS)


def check_optimizer_options(cfg) -> None:
    """Refuse options the chosen optimizer would ignore, naming those that take them."""
    spec = lookup(OPTIMIZERS, "optimizer", cfg.name)
    for option, unset in _OPTION_DEFAULTS.items():
        if getattr(cfg, option) != unset and option not in spec.options:
            takers = [n for n, s in OPTIMIZERS.items() if option in s.options]
            raise ConfigError(
                f"optim.{option} does not apply to {cfg.name}; it applies to: "
                f"{', '.join(takers)}. Remove it or choose one of those optimizers."
            )
    if cfg.nesterov and not cfg.momentum:
        raise ConfigError("optim.nesterov needs optim.momentum > 0 (e.g. optim.momentum=0.9).")


def weight_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Weight matrices and kernels (ndim >= 2): what L1/L2 penalise and max-norm bounds.
    A model that stacks several (pipeline.engine.stacked) names its own."""
    if hasattr(model, "weight_parameters"):
        return iter(model.weight_parameters())
    return (p for p in model.parameters() if p.requires_grad and p.ndim >= 2)


def build_optimizer(model: nn.Module, cfg, prefer_fused: bool = False) -> torch.optim.Optimizer:
    """Weight decay applies to weights only; biases and norm scales/shifts are not decayed.

    prefer_fused: use PyTorch's fused kernels where the optimizer has them and the config left
    optim.foreach unset (the fast engine asks for it)."""
    spec = lookup(OPTIMIZERS, "optimizer", cfg.name)
    decay = list(weight_parameters(model))
    chosen = {id(p) for p in decay}
    other = [p for p in model.parameters() if p.requires_grad and id(p) not in chosen]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
    if other and cfg.weight_decay:
        groups.append({"params": other, "weight_decay": 0.0})
    elif other:  # nothing is decayed: one group, one (fused) kernel launch per step
        groups = [{"params": decay + other, "weight_decay": 0.0}]
    kwargs = {"lr": cfg.lr}
    for option in spec.options:
        value = getattr(cfg, option)
        if value is not None:
            kwargs[option] = tuple(value) if option == "betas" else value
    if prefer_fused and cfg.foreach is None:
        try:
            return spec.cls(groups, fused=True, **kwargs)
        except (TypeError, RuntimeError, ValueError):  # no fused kernel for this one/device
            pass
    return spec.cls(groups, **kwargs)


def l1_penalty(model: nn.Module) -> torch.Tensor:
    return sum(p.abs().sum() for p in weight_parameters(model))


@torch.no_grad()
def apply_max_norm(model: nn.Module, max_norm: float) -> None:
    """Rescale each unit's incoming weights (a row of a Linear weight) to norm <= max_norm."""
    for p in weight_parameters(model):
        p.copy_(torch.renorm(p, 2, 0, max_norm))


# --- schedules ----------------------------------------------------------------------------------
# A closed-form schedule is f(t) -> multiplier of the initial lr, t counted in sched.interval
# units after warm-up; `total` is the run's length in those units.
def _constant(cfg, t: int, total: int) -> float:
    return 1.0


def _step(cfg, t: int, total: int) -> float:
    return cfg.gamma ** sum(t >= m for m in cfg.milestones)


def _exponential(cfg, t: int, total: int) -> float:
    return cfg.gamma ** (t / cfg.decay_steps)


def _power(cfg, t: int, total: int) -> float:
    return (1.0 + t / cfg.decay_steps) ** (-cfg.power)


def _cosine(cfg, t: int, total: int) -> float:
    progress = min(t / max(total, 1), 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


SCHEDULERS: dict[str, Callable | str] = {
    "none": _constant,
    "step": _step,
    "exponential": _exponential,
    "power": _power,
    "cosine": _cosine,
    "plateau": "plateau",  # ReduceLROnPlateau on the validation metric, checked each epoch
    "onecycle": "onecycle",  # OneCycleLR, stepped every optimizer step
}


def canonical_scheduler(name: str) -> str:
    return canonical(SCHEDULERS, "scheduler", name)


def list_schedulers() -> list[str]:
    return list(SCHEDULERS)


def check_scheduler_options(cfg) -> None:
    if cfg.warmup and cfg.name in ("plateau", "onecycle"):
        raise ConfigError(
            f"sched.warmup does not combine with sched.name={cfg.name} "
            + (
                "(one-cycle has its own warm-up: sched.pct_start)."
                if cfg.name == "onecycle"
                else "(plateau reacts to the metric); use step, cosine, exponential or power."
            )
        )
    if cfg.milestones and cfg.name != "step":
        raise ConfigError("sched.milestones applies to sched.name=step only.")
    if cfg.name == "step" and not cfg.milestones:
        raise ConfigError("sched.name=step needs sched.milestones, e.g. sched.milestones=[30,60].")


def lr_multiplier(cfg, t: int, total: int) -> float:
    """Warm-up then the named schedule: the factor applied to the initial lr at time t."""
    if t < cfg.warmup:
        return (t + 1) / cfg.warmup
    fn = lookup(SCHEDULERS, "scheduler", cfg.name)
    return fn(cfg, t - cfg.warmup, total - cfg.warmup)


def build_scheduler(
    optimizer: torch.optim.Optimizer,
    cfg,
    epochs: int,
    steps_per_epoch: int,
    monitor: str,
    mode: str,
) -> dict | None:
    """A Lightning lr_scheduler config dict, or None for a constant lr without warm-up."""
    name = canonical_scheduler(cfg.name)
    if name == "none" and not cfg.warmup:
        return None
    if name == "plateau":
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode=mode, factor=cfg.gamma, patience=cfg.patience
        )
        return {"scheduler": sched, "interval": "epoch", "monitor": monitor, "strict": True}
    if name == "onecycle":
        sched = torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=[g["lr"] for g in optimizer.param_groups],
            total_steps=epochs * steps_per_epoch,
            pct_start=cfg.pct_start,
            # cycle momentum only where the optimizer already uses it, so onecycle never
            # switches on momentum that the config left off
            cycle_momentum="betas" in optimizer.defaults
            or bool(optimizer.defaults.get("momentum")),
        )
        return {"scheduler": sched, "interval": "step"}
    total = epochs if cfg.interval == "epoch" else epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: lr_multiplier(cfg, t, total))
    return {"scheduler": sched, "interval": cfg.interval}
