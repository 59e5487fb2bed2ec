"""Models that read each row as frames x features per frame (TIMIT: 11 frames x 39 MFCC): a
conv stack over the frames (conv, which stacks on the fast engine) or a bidirectional GRU over
them (gru), each with an MLP head of model.hidden.
"""

from __future__ import annotations

from torch import nn

from pipeline.errors import ConfigError
from pipeline.model.configs import ConvConfig, FrameConfig
from pipeline.model.parts import MLP, activation_factory, apply_init, head_norm, norm_factory
from pipeline.model.registry import register_model
from pipeline.model.stacking import stack_frames


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
        self.mlp = MLP(
            cfg.channels * frames, out_features, cfg.hidden, act_layer, head_norm, cfg.dropout
        )
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
        self.mlp = MLP(
            2 * cfg.channels, out_features, cfg.hidden, act_layer, head_norm, cfg.dropout
        )
        self.body = self.mlp.body  # the GRU keeps PyTorch's own (orthogonal-friendly) init
        self.head = self.mlp.head

    def forward(self, x):
        out, _ = self.gru(x.view(len(x), self.frames, self.frame_dim))
        return self.mlp(out[:, self.frames // 2])


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
    return in_features // frame_dim


@register_model("conv", frame=True, config=ConvConfig, stacks=stack_frames)
def build_conv(cfg, in_features: int, out_features: int, frame_dim: int = 0) -> FrameConv:
    frames = count_frames(cfg, in_features, frame_dim)
    norm = norm_factory(cfg, channel_axis=True)
    model = FrameConv(
        frame_dim, frames, out_features, cfg, activation_factory(cfg), norm, head_norm(cfg)
    )
    apply_init(model, cfg)
    return model


@register_model("gru", frame=True, config=FrameConfig)
def build_gru(cfg, in_features: int, out_features: int, frame_dim: int = 0) -> FrameGRU:
    frames = count_frames(cfg, in_features, frame_dim)
    model = FrameGRU(frame_dim, frames, out_features, cfg, activation_factory(cfg), head_norm(cfg))
    apply_init(model, cfg)
    return model
