"""The parts every built-in model is made of, for new models to reuse: the MLP (a body of
hidden layers and a linear head), the one init function, and factories that turn the model.*
keys (activation, norm, init) into layers. Plain nn.Modules: they know nothing about Lightning.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from torch import nn

from pipeline.errors import ConfigError
from pipeline.model import registry


class MLP(nn.Module):
    """Input dropout; per hidden layer Linear -> norm -> activation -> dropout; a linear head.

    Norm sits before the activation, as in the batch-norm paper; dropout last, so it drops the
    activations the next layer reads.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: list[int],
        act_layer: Callable[[], nn.Module] = nn.ReLU,
        norm_layer: Callable[[int], nn.Module] | None = None,
        dropout: float | list[float] = 0.0,
        input_dropout: float = 0.0,
    ):
        super().__init__()
        rates = dropout if isinstance(dropout, list) else [dropout] * len(hidden)
        layers: list[nn.Module] = [nn.Dropout(input_dropout)] if input_dropout > 0 else []
        width = in_features
        for size, rate in zip(hidden, rates, strict=True):
            layers.append(nn.Linear(width, size))
            if norm_layer is not None:
                layers.append(norm_layer(size))
            layers.append(act_layer())
            if rate > 0:
                layers.append(nn.Dropout(rate))
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, out_features)

    def forward(self, x):
        return self.head(self.body(x))


def init_weights(module: nn.Module, name: str, gain: float) -> None:
    """The one init function, applied with `model.apply`: weights by `name`, biases zero."""
    fn = registry.get_init(name)
    if fn is None or not isinstance(module, (nn.Linear, nn.Conv1d)):
        return
    fn(module.weight, gain)
    if module.bias is not None:
        nn.init.zeros_(module.bias)


def apply_init(model: nn.Module, cfg) -> None:
    """Hidden layers get the gain of their activation; the head, which has none, gain 1."""
    gain = registry.activation_gain(cfg.activation, cfg.leaky_slope)
    model.body.apply(partial(init_weights, name=cfg.init, gain=gain))
    model.head.apply(partial(init_weights, name=cfg.init, gain=1.0))


def norm_factory(cfg, channel_axis: bool):
    """model.norm as `layer(num_features)`, or None for no norm."""
    if registry.normalize(cfg.norm) == "none":
        return None
    return partial(_checked_norm, cfg.norm, groups=cfg.norm_groups, channel_axis=channel_axis)


def head_norm(cfg):
    # the head's hidden layers have no channel axis: instance norm stays in the conv stack
    return None if registry.normalize(cfg.norm) == "instance" else norm_factory(cfg, False)


def activation_factory(cfg):
    """model.activation as `layer()` (with model.leaky_slope)."""
    return partial(registry.get_activation, cfg.activation, cfg.leaky_slope)


def _checked_norm(name: str, num_features: int, groups: int, channel_axis: bool) -> nn.Module:
    try:
        return registry.get_norm(name, num_features, groups, channel_axis)
    except ValueError as exc:
        raise ConfigError(f"model.norm={name}: {exc}") from None
