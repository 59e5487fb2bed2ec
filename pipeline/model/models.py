"""Plain nn.Module models built from registry names; they know nothing about Lightning.

`model.name` picks a builder from `MODELS` (pipeline.model.registry). Add your own architecture with
the `register_model` decorator, from a competition plug-in (competitions/<name>/__init__.py) or
any module imported before the config is read, and select it with `model.name=<name>`:

    @register_model("mine", frame=False)
    def build_mine(cfg, in_features: int, out_features: int, frame_dim: int) -> nn.Module: ...

The contract: `cfg` is the `model` config section (ModelConfig: hidden, activation, norm,
dropout, init, ...; a builder reads what it needs and may ignore the rest); `in_features` is
the width of a preprocessed row; `out_features` the number of outputs (1 for regression, one
logit per class for classification, no softmax); `frame_dim` > 0 when a row is frames x
frame_dim features (TIMIT: 11 x 39), else 0. It returns an `nn.Module` mapping a float batch
(N, in_features) to (N, out_features). `frame=True` marks a model that reads rows as frames: only
such models accept the frame keys (model.channels, kernel, layers, frame_dropout); the config
refuses them for the others. The helpers below (`activation_factory`, `norm_factory`,
`apply_init`, `count_frames`) give a new model the switches the built-in ones have.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from torch import nn

from pipeline.model import registry
from pipeline.errors import ConfigError
from pipeline.model.registry import MODELS, register_model


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


class FrameConv(nn.Module):
    """Rows of `frames` x `frame_dim` read as a 1-D signal: conv layers over the frames, each
    Conv1d -> norm (with a channel axis, so instance norm is available) -> activation ->
    dropout; then the flattened feature map goes through an MLP head."""

    def __init__(self, frame_dim, frames, out_features, cfg, act_layer, norm_layer, head_norm):
        super().__init__()
        self.frames, self.frame_dim = frames, frame_dim
        layers: list[nn.Module] = []
        width = frame_dim
        for _ in range(cfg.layers):
            layers.append(nn.Conv1d(width, cfg.channels, cfg.kernel, padding=cfg.kernel // 2))
            if norm_layer is not None:
                layers.append(norm_layer(cfg.channels))
            layers.append(act_layer())
            if cfg.frame_dropout > 0:
                layers.append(nn.Dropout(cfg.frame_dropout))
            width = cfg.channels
        self.convs = nn.Sequential(*layers)
        self.mlp = MLP(cfg.channels * frames, out_features, list(cfg.hidden), act_layer,
                       head_norm, cfg.dropout, 0.0)  # fmt: skip
        self.body = nn.Sequential(self.convs, self.mlp.body)
        self.head = self.mlp.head

    def forward(self, x):
        x = x.view(len(x), self.frames, self.frame_dim).transpose(1, 2)  # (N, features, frames)
        return self.mlp(self.convs(x).flatten(1))


class FrameGRU(nn.Module):
    """A bidirectional GRU over the frames; the centre frame's output goes through an MLP head."""

    def __init__(self, frame_dim, frames, out_features, cfg, act_layer, head_norm):
        super().__init__()
        self.frames, self.frame_dim = frames, frame_dim
        self.gru = nn.GRU(
            frame_dim,
            cfg.channels,
            num_layers=cfg.layers,
            batch_first=True,
            bidirectional=True,
            dropout=cfg.frame_dropout if cfg.layers > 1 else 0.0,
        )
        self.mlp = MLP(2 * cfg.channels, out_features, list(cfg.hidden), act_layer, head_norm,
                       cfg.dropout, 0.0)  # fmt: skip
        self.body = self.mlp.body  # the GRU keeps PyTorch's own (orthogonal-friendly) init
        self.head = self.mlp.head

    def forward(self, x):
        out, _ = self.gru(x.view(len(x), self.frames, self.frame_dim))
        return self.mlp(out[:, self.frames // 2])


class SequenceRNN(nn.Module):
    """A bidirectional GRU or LSTM over windows of consecutive rows (model.name=seq): reads
    (windows, W, features) and labels every row, (windows, W, out), through an MLP head on each
    position. Layers are single-layer recurrent modules with nn.Dropout (model.frame_dropout)
    between them, so MC dropout reaches them too. A 2-D input (rows, features) is read as one
    sequence. `window` and `stride` tell the engine how to cut windows (engine/windows.py)."""

    def __init__(self, in_features, out_features, cfg, act_layer, head_norm):
        super().__init__()
        self.window, self.stride = cfg.window, cfg.stride
        rnn = nn.GRU if cfg.cell == "gru" else nn.LSTM
        self.input_dropout = nn.Dropout(cfg.input_dropout) if cfg.input_dropout > 0 else None
        self.rnns = nn.ModuleList()
        self.between = nn.ModuleList()
        width = in_features
        for _ in range(cfg.layers):
            self.rnns.append(rnn(width, cfg.channels, batch_first=True, bidirectional=True))
            self.between.append(
                nn.Dropout(cfg.frame_dropout) if cfg.frame_dropout > 0 else nn.Identity()
            )
            width = 2 * cfg.channels
        self.mlp = MLP(width, out_features, list(cfg.hidden), act_layer, head_norm, cfg.dropout,
                       0.0)  # fmt: skip
        self.body = self.mlp.body  # the recurrent layers keep PyTorch's own init
        self.head = self.mlp.head

    def forward(self, x):
        if x.dim() == 2:
            return self.forward(x.unsqueeze(0)).squeeze(0)
        if self.input_dropout is not None:
            x = self.input_dropout(x)
        for rnn, drop in zip(self.rnns, self.between, strict=True):
            x = drop(rnn(x)[0])
        n, w, f = x.shape
        return self.mlp(x.reshape(n * w, f)).view(n, w, -1)


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


def _head_norm(cfg):
    # the head's hidden layers have no channel axis: instance norm stays in the conv stack
    return None if registry.normalize(cfg.norm) == "instance" else norm_factory(cfg, False)


def activation_factory(cfg):
    """model.activation as `layer()` (with model.leaky_slope)."""
    return partial(registry.get_activation, cfg.activation, cfg.leaky_slope)


@register_model("mlp")
def build_mlp(cfg, in_features: int, out_features: int, frame_dim: int = 0) -> MLP:
    model = MLP(
        in_features,
        out_features,
        hidden=list(cfg.hidden),
        act_layer=activation_factory(cfg),
        norm_layer=norm_factory(cfg, channel_axis=False),
        dropout=cfg.dropout,
        input_dropout=cfg.input_dropout,
    )
    apply_init(model, cfg)
    return model


def count_frames(cfg, in_features: int, frame_dim: int) -> int:
    """Frames per row for a frame model; ConfigError when the rows are not whole frames."""
    if frame_dim <= 0:
        raise ConfigError(
            f"model.name={cfg.name} reads rows as frames, and this competition's rows are not "
            "made of frames; use model.name=mlp."
        )
    if in_features % frame_dim:
        raise ConfigError(
            f"model.name={cfg.name} needs whole frames of {frame_dim} features; the "
            f"preprocessed rows have {in_features} (keep features.select=all)."
        )
    if cfg.input_dropout > 0:
        raise ConfigError("model.input_dropout applies to model.name=mlp only.")
    return in_features // frame_dim


@register_model("conv", frame=True)
def build_conv(cfg, in_features: int, out_features: int, frame_dim: int = 0) -> FrameConv:
    frames = count_frames(cfg, in_features, frame_dim)
    norm = norm_factory(cfg, channel_axis=True)
    model = FrameConv(
        frame_dim, frames, out_features, cfg, activation_factory(cfg), norm, _head_norm(cfg)
    )
    apply_init(model, cfg)
    return model


@register_model("gru", frame=True)
def build_gru(cfg, in_features: int, out_features: int, frame_dim: int = 0) -> FrameGRU:
    frames = count_frames(cfg, in_features, frame_dim)
    model = FrameGRU(
        frame_dim, frames, out_features, cfg, activation_factory(cfg), _head_norm(cfg)
    )
    apply_init(model, cfg)
    return model


@register_model("seq", sequence=True)
def build_seq(cfg, in_features: int, out_features: int, frame_dim: int = 0) -> SequenceRNN:
    model = SequenceRNN(in_features, out_features, cfg, activation_factory(cfg), _head_norm(cfg))
    apply_init(model, cfg)
    return model


def _checked_norm(name: str, num_features: int, groups: int, channel_axis: bool) -> nn.Module:
    try:
        return registry.get_norm(name, num_features, groups, channel_axis)
    except ValueError as exc:
        raise ConfigError(f"model.norm={name}: {exc}") from None


def build_model(
    cfg, in_features: int, out_features: int, frame_dim: int = 0,
    embed: Sequence[tuple[int, int]] = (),
) -> nn.Module:  # fmt: skip
    """cfg is the `model` config section; frame_dim > 0 when rows are frames x frame_dim;
    `embed`: (categories, width) of each category-code column at the end of a row, read
    through learned embeddings (EmbeddingInput) before the model."""
    if not embed:
        return MODELS.lookup(cfg.name)(cfg, in_features, out_features, frame_dim)
    if frame_dim:
        raise ConfigError("Category embeddings need a model that reads flat rows, not frames.")
    dense = in_features - len(embed) + sum(width for _, width in embed)
    inner = MODELS.lookup(cfg.name)(cfg, dense, out_features, frame_dim)
    return EmbeddingInput(embed, inner)


class EmbeddingInput(nn.Module):
    """The last len(embed) columns of a row are category codes (0: unknown, missing or rare);
    each is replaced by its learned embedding, concatenated to the other columns, and the
    result goes to `inner` (entity embeddings, as in fast.ai's tabular models)."""

    def __init__(self, embed: Sequence[tuple[int, int]], inner: nn.Module):
        super().__init__()
        self.sizes = [n for n, _ in embed]
        self.embeddings = nn.ModuleList(nn.Embedding(n, width) for n, width in embed)
        self.inner = inner

    def forward(self, x):
        m = len(self.embeddings)
        codes = x[:, -m:].round().long()
        parts = [x[:, :-m]]
        for j, (table, n) in enumerate(zip(self.embeddings, self.sizes)):
            parts.append(table(codes[:, j].clamp(0, n - 1)))
        return self.inner(torch.cat(parts, dim=1))


def list_models() -> list[str]:
    return MODELS.names()


def sequence_models() -> list[str]:
    """The registered models that read windows of consecutive rows (sequence=True)."""
    return MODELS.names(sequence=True)


def frame_models() -> list[str]:
    """The registered models that read rows as frames (registered with frame=True)."""
    return MODELS.names(frame=True)

