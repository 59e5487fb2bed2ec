"""The built-in activations, norms and weight inits of `pipeline.model.registry` (timm's create_act
/ create_norm): what the models are made of, chosen by name in the config.

Add your own the same way, e.g. from a competition plug-in:

    from torch import nn
    from pipeline.model.registry import register_activation

    register_activation("mish", lambda slope: nn.Mish(), gain="relu")
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pipeline.model.registry import register_activation, register_init, register_norm

# --- activations -------------------------------------------------------------------------------
# Each factory takes the LeakyReLU slope so that all entries share one signature. The gain is
# for Xavier/He/orthogonal init, as torch.nn.init.calculate_gain names it. ELU, GELU and SiLU
# behave like ReLU for positive inputs, so they take ReLU's gain (the common practice); SELU
# takes the linear gain (LeCun init), as PyTorch recommends for self-normalising nets.
register_activation("relu", lambda slope: nn.ReLU(), gain="relu")
register_activation("leaky_relu", lambda slope: nn.LeakyReLU(slope), gain="leaky_relu")
register_activation("elu", lambda slope: nn.ELU(), gain="relu")
register_activation("selu", lambda slope: nn.SELU(), gain="linear")
register_activation("gelu", lambda slope: nn.GELU(), gain="relu")
register_activation("silu", lambda slope: nn.SiLU(), gain="relu")
register_activation("tanh", lambda slope: nn.Tanh(), gain="tanh")
register_activation("sigmoid", lambda slope: nn.Sigmoid(), gain="sigmoid")
register_activation("none", lambda slope: nn.Identity(), gain="linear")


# --- normalisation layers ----------------------------------------------------------------------
# Factories take (num_features, groups, channel_axis). MLP features have no channel axis, so
# instance norm (statistics per sample and channel over positions) only exists for models that
# read the input as channels x positions.
@register_norm("batch")
def _batch_norm(num_features: int, groups: int, channel_axis: bool) -> nn.Module:
    return nn.BatchNorm1d(num_features)


@register_norm("layer")
def _layer_norm(num_features: int, groups: int, channel_axis: bool) -> nn.Module:
    # With a channel axis the input is (N, C, L); GroupNorm(1, C) normalises over (C, L)
    # jointly, which is what layer norm means there.
    return nn.GroupNorm(1, num_features) if channel_axis else nn.LayerNorm(num_features)


@register_norm("group")
def _group_norm(num_features: int, groups: int, channel_axis: bool) -> nn.Module:
    if groups < 1 or num_features % groups:
        raise ValueError(
            f"Group norm needs groups that divide the layer width; {groups} groups do not "
            f"divide {num_features} units. Choose a divisor of every hidden width."
        )
    return nn.GroupNorm(groups, num_features)


@register_norm("instance")
def _instance_norm(num_features: int, groups: int, channel_axis: bool) -> nn.Module:
    if not channel_axis:
        raise ValueError(
            "Instance norm needs a channel axis (a model that reads the input as channels x "
            "positions); for an MLP choose batch, layer or group norm."
        )
    return nn.InstanceNorm1d(num_features, affine=True)


@register_norm("none")
def _no_norm(num_features: int, groups: int, channel_axis: bool) -> nn.Module:
    return nn.Identity()


# --- weight initialisation ---------------------------------------------------------------------
register_init("default", None)  # keep PyTorch's own initialisation


@register_init("xavier_normal")
def _init_xavier_normal(w: torch.Tensor, gain: float) -> None:
    nn.init.xavier_normal_(w, gain=gain)


@register_init("xavier_uniform")
def _init_xavier_uniform(w: torch.Tensor, gain: float) -> None:
    nn.init.xavier_uniform_(w, gain=gain)


def _fan_in(w: torch.Tensor) -> int:
    return w.shape[1] * math.prod(w.shape[2:])


@register_init("he_normal")
def _init_he_normal(w: torch.Tensor, gain: float) -> None:
    # std = gain / sqrt(fan_in), written out so that every activation's gain can be used.
    with torch.no_grad():
        w.normal_(0.0, gain / math.sqrt(_fan_in(w)))


@register_init("he_uniform")
def _init_he_uniform(w: torch.Tensor, gain: float) -> None:
    bound = gain * math.sqrt(3.0 / _fan_in(w))
    with torch.no_grad():
        w.uniform_(-bound, bound)


@register_init("orthogonal")
def _init_orthogonal(w: torch.Tensor, gain: float) -> None:
    nn.init.orthogonal_(w, gain=gain)
