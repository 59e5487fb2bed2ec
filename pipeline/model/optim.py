"""Optimizers, learning-rate schedules and weight penalties/constraints, built from config.

OPTIMIZERS and SCHEDULERS are the open registries of `pipeline.model.registry`; the built-in
entries are registered here. An optimizer entry is a torch.optim.Optimizer class registered with
the optional optim.* keys it takes (`options`); the config refuses the others, so no switch is
silently ignored. A schedule entry is either a closed form f(cfg, t, total) -> multiplier of the
initial lr (a LambdaLR, written as the formula; tests compare them step by step), or, registered
with builder=True, f(optimizer, cfg, epochs, steps_per_epoch, monitor, mode) -> Lightning's
lr_scheduler dict (plateau and one-cycle are PyTorch's own). Its other facts: `options` (the
optional sched.* keys it takes; one it does not take, set away from its default, is refused),
`needs` ({key: example} it cannot do without) and `no_warmup` (why sched.warmup does not combine
with it).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from pipeline.model.registry import OPTIMIZERS, SCHEDULERS, register_optimizer, register_scheduler

register_optimizer("sgd", torch.optim.SGD, options=("momentum", "nesterov", "foreach"))
register_optimizer("adagrad", torch.optim.Adagrad, options=("eps", "foreach"))
register_optimizer("rmsprop", torch.optim.RMSprop, options=("momentum", "alpha", "eps", "foreach"))
register_optimizer("adadelta", torch.optim.Adadelta, options=("rho", "eps", "foreach"))
for _name, _cls in (
    ("adam", torch.optim.Adam),
    ("adamw", torch.optim.AdamW),
    ("nadam", torch.optim.NAdam),
    ("radam", torch.optim.RAdam),
):
    register_optimizer(_name, _cls, options=("betas", "eps", "foreach"))


def canonical_optimizer(name: str) -> str:
    return OPTIMIZERS.canonical(name)


def list_optimizers() -> list[str]:
    return OPTIMIZERS.names()


def weight_parameters(model: nn.Module) -> Iterator[nn.Parameter]:
    """Weight matrices and kernels (ndim >= 2): what L1/L2 penalise and max-norm bounds.
    A model that stacks several (pipeline.model.stacking) names its own."""
    if hasattr(model, "weight_parameters"):
        return iter(model.weight_parameters())
    return (p for p in model.parameters() if p.requires_grad and p.ndim >= 2)


def build_optimizer(model: nn.Module, cfg, prefer_fused: bool = False) -> torch.optim.Optimizer:
    """Weight decay applies to weights only; biases and norm scales/shifts are not decayed.

    prefer_fused: use PyTorch's fused kernel where the optimizer has one for the device the
    parameters sit on and the config left optim.foreach unset (the fast engine asks for it)."""
    cls, options = OPTIMIZERS.lookup(cfg.name), OPTIMIZERS.info(cfg.name)["options"]
    decay = list(weight_parameters(model))
    chosen = {id(p) for p in decay}
    other = [p for p in model.parameters() if p.requires_grad and id(p) not in chosen]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}]
    if other and cfg.weight_decay:
        groups.append({"params": other, "weight_decay": 0.0})
    elif other:  # nothing is decayed: one group, one (fused) kernel launch per step
        groups = [{"params": decay + other, "weight_decay": 0.0}]
    kwargs = {"lr": cfg.lr}
    for option in options:
        value = getattr(cfg, option)
        if value is not None:
            kwargs[option] = tuple(value) if option == "betas" else value
    params = [p for group in groups for p in group["params"]]
    if prefer_fused and cfg.foreach is None and params and fused_steps(cls, params[0].device):
        return cls(groups, fused=True, **kwargs)
    return cls(groups, **kwargs)


_FUSED: dict[tuple[type, str], bool] = {}


def fused_steps(cls: type, device: torch.device) -> bool:
    """Whether optimizer `cls` has a fused kernel that steps a parameter on `device` in this
    PyTorch release. Asked of PyTorch by stepping a one-element parameter: which optimizers have
    a fused kernel for which device changes between releases (Adagrad's was CPU-only), and an
    optimizer built with fused=True only fails at its first step, in the middle of training."""
    key = (cls, torch.device(device).type)
    if key not in _FUSED:
        p = torch.zeros(1, device=device, requires_grad=True)
        p.grad = torch.zeros_like(p)
        try:
            cls([p], lr=0.1, fused=True).step()
            _FUSED[key] = True
        except (RuntimeError, TypeError, ValueError, NotImplementedError):
            _FUSED[key] = False
    return _FUSED[key]


def l1_penalty(model: nn.Module) -> torch.Tensor:
    return sum(p.abs().sum() for p in weight_parameters(model))


@torch.no_grad()
def apply_max_norm(model: nn.Module, max_norm: float) -> None:
    """Rescale each unit's incoming weights (a row of a Linear weight) to norm <= max_norm."""
    for p in weight_parameters(model):
        p.copy_(torch.renorm(p, 2, 0, max_norm))


# --- schedules ----------------------------------------------------------------------------------
# A closed-form schedule is f(cfg, t, total) -> multiplier of the initial lr, t counted in
# sched.interval units after warm-up; `total` is the run's length in those units.
@register_scheduler("none")
def _constant(cfg, t: int, total: int) -> float:
    return 1.0


@register_scheduler("step", options=("milestones", "gamma"), needs={"milestones": "[30,60]"})
def _step(cfg, t: int, total: int) -> float:
    return cfg.gamma ** sum(t >= m for m in cfg.milestones)


@register_scheduler("exponential", options=("gamma", "decay_steps"))
def _exponential(cfg, t: int, total: int) -> float:
    return cfg.gamma ** (t / cfg.decay_steps)


@register_scheduler("power", options=("decay_steps", "power"))
def _power(cfg, t: int, total: int) -> float:
    return (1.0 + t / cfg.decay_steps) ** (-cfg.power)


@register_scheduler("cosine", options=("min_lr_ratio",))
def _cosine(cfg, t: int, total: int) -> float:
    progress = min(t / max(total, 1), 1.0)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@register_scheduler(
    "plateau",
    builder=True,
    options=("gamma", "patience"),
    no_warmup="plateau reacts to the metric",
)
def _plateau(optimizer, cfg, epochs: int, steps_per_epoch: int, monitor: str, mode: str) -> dict:
    """ReduceLROnPlateau on the validation metric, checked each epoch."""
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=cfg.gamma, patience=cfg.patience
    )
    return {"scheduler": sched, "interval": "epoch", "monitor": monitor, "strict": True}


@register_scheduler(
    "onecycle",
    builder=True,
    options=("pct_start",),
    no_warmup="one-cycle has its own warm-up: sched.pct_start",
)
def _onecycle(optimizer, cfg, epochs: int, steps_per_epoch: int, monitor: str, mode: str) -> dict:
    """OneCycleLR, stepped every optimizer step."""
    sched = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=[g["lr"] for g in optimizer.param_groups],
        total_steps=epochs * steps_per_epoch,
        pct_start=cfg.pct_start,
        # cycle momentum only where the optimizer already uses it, so onecycle never switches
        # on momentum that the config left off
        cycle_momentum="betas" in optimizer.defaults or bool(optimizer.defaults.get("momentum")),
    )
    return {"scheduler": sched, "interval": "step"}


def canonical_scheduler(name: str) -> str:
    return SCHEDULERS.canonical(name)


def list_schedulers() -> list[str]:
    return SCHEDULERS.names()


def lr_multiplier(cfg, t: int, total: int) -> float:
    """Warm-up then the named schedule: the factor applied to the initial lr at time t."""
    if t < cfg.warmup:
        return (t + 1) / cfg.warmup
    if SCHEDULERS.info(cfg.name)["builder"]:
        raise ValueError(f"sched.name={cfg.name} is PyTorch's own schedule, not a closed form.")
    return SCHEDULERS.lookup(cfg.name)(cfg, t - cfg.warmup, total - cfg.warmup)


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
    if SCHEDULERS.info(name)["builder"]:
        return SCHEDULERS.lookup(name)(optimizer, cfg, epochs, steps_per_epoch, monitor, mode)
    total = epochs if cfg.interval == "epoch" else epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: lr_multiplier(cfg, t, total))
    return {"scheduler": sched, "interval": cfg.interval}
