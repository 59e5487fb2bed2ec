"""Sequence models (model.name=seq): a bidirectional GRU or LSTM over windows of consecutive
rows that labels every row (the engine cuts the windows: pipeline/engine/windows.py).
"""

from __future__ import annotations

from torch import nn

from pipeline.model.configs import SequenceConfig
from pipeline.model.parts import MLP, activation_factory, apply_init, head_norm
from pipeline.model.registry import register_model


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
        self.mlp = MLP(
            width, out_features, list(cfg.hidden), act_layer, head_norm, cfg.dropout, 0.0
        )
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


@register_model("seq", sequence=True, config=SequenceConfig)
def build_seq(cfg, in_features: int, out_features: int, frame_dim: int = 0) -> SequenceRNN:
    model = SequenceRNN(in_features, out_features, cfg, activation_factory(cfg), head_norm(cfg))
    apply_init(model, cfg)
    return model
