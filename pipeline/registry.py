"""Name -> component registries (activations, norms, inits, optimizers, schedulers, models).

Plain dicts plus `get_x(name)` / `list_x()`, in the style of timm's factories. Names are
normalised (case, '-' and '_' ignored), so `LeakyReLU`, `leaky_relu` and `leaky-relu` are one
entry. An unknown name raises ValueError listing the valid ones. Tests parametrize over these
dicts, so a new entry is tested the day it is added.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import nn


def normalize(name: str | None) -> str:
    if name is None:
        return "none"
    return str(name).lower().replace("_", "").replace("-", "")


def lookup(table: dict[str, Any], kind: str, name: str | None) -> Any:
    key = normalize(name)
    for entry, value in table.items():
        if normalize(entry) == key:
            return value
    raise ValueError(f"Unknown {kind} {name!r}; choose one of: {', '.join(table)}.")


def canonical(table: dict[str, Any], kind: str, name: str | None) -> str:
    """The registry's own spelling of `name` (raises like a lookup when it is unknown)."""
    key = normalize(name)
    for entry in table:
        if normalize(entry) == key:
            return entry
    lookup(table, kind, name)
    raise AssertionError("unreachable")


# --- activations -------------------------------------------------------------------------------
# Each factory takes the LeakyReLU slope so that all entries share one signature.
ACTIVATIONS: dict[str, Callable[[float], nn.Module]] = {
    "relu": lambda slope: nn.ReLU(),
    "leaky_relu": lambda slope: nn.LeakyReLU(slope),
    "elu": lambda slope: nn.ELU(),
    "selu": lambda slope: nn.SELU(),
    "gelu": lambda slope: nn.GELU(),
    "silu": lambda slope: nn.SiLU(),
    "tanh": lambda slope: nn.Tanh(),
    "sigmoid": lambda slope: nn.Sigmoid(),
    "none": lambda slope: nn.Identity(),
}

# Gain for Xavier/He/orthogonal init, as torch.nn.init.calculate_gain names it. ELU, GELU and
# SiLU behave like ReLU for positive inputs, so they take ReLU's gain (the common practice);
# SELU takes the linear gain (LeCun init), as PyTorch recommends for self-normalising nets.
ACTIVATION_GAIN: dict[str, str] = {
    "relu": "relu",
    "leaky_relu": "leaky_relu",
    "elu": "relu",
    "selu": "linear",
    "gelu": "relu",
    "silu": "relu",
    "tanh": "tanh",
    "sigmoid": "sigmoid",
    "none": "linear",
}


def get_activation(name: str | None, slope: float = 0.01) -> nn.Module:
    return lookup(ACTIVATIONS, "activation", name)(slope)


def list_activations() -> list[str]:
    return list(ACTIVATIONS)


def activation_gain(name: str | None, slope: float = 0.01) -> float:
    gain_name = ACTIVATION_GAIN[canonical(ACTIVATIONS, "activation", name)]
    return nn.init.calculate_gain(gain_name, slope if gain_name == "leaky_relu" else None)


# --- normalisation layers ----------------------------------------------------------------------
# Factories take (num_features, groups, channel_axis). MLP features have no channel axis, so
# instance norm (statistics per sample and channel over positions) only exists for models that
# read the input as channels x positions.
def _instance_norm(num_features: int, groups: int, channel_axis: bool) -> nn.Module:
    if not channel_axis:
        raise ValueError(
            "Instance norm needs a channel axis (a model that reads the input as channels x "
            "positions); for an MLP choose batch, layer or group norm."
        )
    return nn.InstanceNorm1d(num_features, affine=True)


def _group_norm(num_features: int, groups: int, channel_axis: bool) -> nn.Module:
    if groups < 1 or num_features % groups:
        raise ValueError(
            f"Group norm needs groups that divide the layer width; {groups} groups do not "
            f"divide {num_features} units. Choose a divisor of every hidden width."
        )
    return nn.GroupNorm(groups, num_features)


def _layer_norm(num_features: int, groups: int, channel_axis: bool) -> nn.Module:
    # With a channel axis the input is (N, C, L); normalise over channels per position, the
    # GroupNorm(1, C) formulation normalises over (C, L) jointly, which is what LN means there.
    return nn.GroupNorm(1, num_features) if channel_axis else nn.LayerNorm(num_features)


NORMS: dict[str, Callable[[int, int, bool], nn.Module]] = {
    "batch": lambda n, groups, channel_axis: nn.BatchNorm1d(n),
    "layer": _layer_norm,
    "group": _group_norm,
    "instance": _instance_norm,
    "none": lambda n, groups, channel_axis: nn.Identity(),
}


def get_norm(name: str | None, num_features: int, groups: int = 1, channel_axis: bool = False):
    return lookup(NORMS, "norm", name)(num_features, groups, channel_axis)


def list_norms() -> list[str]:
    return list(NORMS)


# --- weight initialisation ---------------------------------------------------------------------
def _init_xavier_normal(w: torch.Tensor, gain: float) -> None:
    nn.init.xavier_normal_(w, gain=gain)


def _init_xavier_uniform(w: torch.Tensor, gain: float) -> None:
    nn.init.xavier_uniform_(w, gain=gain)


def _fan_in(w: torch.Tensor) -> int:
    return w.shape[1] * math.prod(w.shape[2:])


def _init_he_normal(w: torch.Tensor, gain: float) -> None:
    # std = gain / sqrt(fan_in), written out so that every activation's gain can be used.
    fan_in = _fan_in(w)
    with torch.no_grad():
        w.normal_(0.0, gain / math.sqrt(fan_in))


def _init_he_uniform(w: torch.Tensor, gain: float) -> None:
    fan_in = _fan_in(w)
    bound = gain * math.sqrt(3.0 / fan_in)
    with torch.no_grad():
        w.uniform_(-bound, bound)


def _init_orthogonal(w: torch.Tensor, gain: float) -> None:
    nn.init.orthogonal_(w, gain=gain)


INITS: dict[str, Callable[[torch.Tensor, float], None] | None] = {
    "default": None,  # keep PyTorch's own initialisation
    "xavier_normal": _init_xavier_normal,
    "xavier_uniform": _init_xavier_uniform,
    "he_normal": _init_he_normal,
    "he_uniform": _init_he_uniform,
    "orthogonal": _init_orthogonal,
}


def get_init(name: str | None):
    return lookup(INITS, "init", "default" if name is None else name)


def list_inits() -> list[str]:
    return list(INITS)
