"""Sequence models (model.name=seq): a bidirectional GRU or LSTM over windows of consecutive
rows that labels every row (the engine cuts the windows: pipeline/engine/windows.py).
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from torch.func import functional_call

from pipeline.model.configs import SequenceConfig
from pipeline.model.parts import MLP, activation_factory, apply_init, head_norm
from pipeline.model.registry import register_model
from pipeline.model.stacking import StackedLinear, stack_module, unstack_module


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


class _BlockRNN(nn.Module):
    """K single-layer bidirectional GRUs (or LSTMs), one per fold, run as one RNN of K times the
    units whose weight matrices are block-diagonal: fold k's inputs and units meet only fold
    k's weights, so each fold computes exactly what its own RNN would, and cuDNN runs all K
    folds in one call. The parameters stay per fold, (K, ...) like every stacked layer (L1, L2,
    max-norm and per-fold clipping act on them unchanged); the block-diagonal matrices are
    assembled from them at each call. Zeros cost arithmetic: K times that of K separate RNNs,
    which a GPU has to spare and a CPU does not (the engine choice stacks them on CUDA only).

    `in_columns` (K, in): the column of the combined input that holds fold k's feature j."""

    def __init__(self, rnns: list[nn.Module], in_columns: torch.Tensor):
        super().__init__()
        first = rnns[0]
        K, H = len(rnns), first.hidden_size
        gates = first.weight_ih_l0.shape[0] // H  # 3 for a GRU, 4 for an LSTM
        self.names = [f"{kind}_l0{suffix}" for suffix in ("", "_reverse")
                      for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]  # fmt: skip
        for name in self.names:
            value = torch.stack([getattr(r, name).detach().clone() for r in rnns])
            self.register_parameter(name, nn.Parameter(value))
        # row of fold k's gate g, unit u in the combined matrices: g*K*H + k*H + u
        rows = (torch.arange(gates)[None, :, None] * K * H + torch.arange(K)[:, None, None] * H
                + torch.arange(H)[None, None, :]).reshape(K, gates * H)  # fmt: skip
        units = torch.arange(K)[:, None] * H + torch.arange(H)[None, :]  # (K, H)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("in_columns", in_columns, persistent=False)
        self.register_buffer("units", units, persistent=False)
        cell = nn.GRU if isinstance(first, nn.GRU) else nn.LSTM
        # the combined RNN's shape only: its own parameters are never used (functional_call
        # swaps in the assembled ones), and a list keeps them out of this module's
        self._combined = [cell(in_columns.numel(), K * H, batch_first=True, bidirectional=True)]
        self.K, self.H = K, H

    def _assembled(self) -> dict[str, torch.Tensor]:
        out = {}
        for name in self.names:
            p = getattr(self, name)  # (K, G*H, in) / (K, G*H, H) / (K, G*H)
            rows = self.rows[:, :, None]
            if name.startswith("weight_ih"):
                big = p.new_zeros(self.rows.numel(), self.in_columns.numel())
                big[rows, self.in_columns[:, None, :]] = p
            elif name.startswith("weight_hh"):
                big = p.new_zeros(self.rows.numel(), self.units.numel())
                big[rows, self.units[:, None, :]] = p
            else:
                big = p.new_zeros(self.rows.numel())
                big[self.rows] = p
            out[name] = big
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, combined inputs) -> (B, T, 2*K*H): forward units, then backward units."""
        with warnings.catch_warnings():  # assembled weights are not one flat buffer: cuDNN
            warnings.simplefilter("ignore", UserWarning)  # copies them, as it says
            return functional_call(self._combined[0], self._assembled(), (x,))[0]

    def unstack_into(self, rnn: nn.Module, k: int) -> None:
        for name in self.names:
            getattr(rnn, name).data.copy_(getattr(self, name)[k])

    def weights(self) -> list[nn.Parameter]:
        return [getattr(self, n) for n in self.names if n.startswith("weight")]


class StackedSequence(nn.Module):
    """K SequenceRNNs, one per fold, trained as one: (K, windows, W, features) ->
    (K, windows, W, out). See _BlockRNN for the recurrent layers; the heads are the MLP's
    stacked layers (pipeline/model/stacking.py)."""

    def __init__(self, models: list[SequenceRNN]):
        super().__init__()
        first = models[0]
        self.K, self.window, self.stride = len(models), first.window, first.stride
        self._template = [copy.deepcopy(first).cpu()]  # what unstack() rebuilds
        self.input_dropout = copy.deepcopy(first.input_dropout)
        self.between = copy.deepcopy(first.between)
        K, H = self.K, first.rnns[0].hidden_size
        width = first.rnns[0].input_size
        columns = torch.arange(K)[:, None] * width + torch.arange(width)[None, :]
        self.rnns = nn.ModuleList()
        for layer in range(len(first.rnns)):
            self.rnns.append(_BlockRNN([m.rnns[layer] for m in models], columns))
            # the next layer reads fold k's forward units, then its backward ones
            units = torch.arange(K)[:, None] * H + torch.arange(H)[None, :]
            columns = torch.cat([units, K * H + units], dim=1)
        self.parts = ("mlp.body", "mlp.head")
        self.stages = nn.ModuleList(
            [
                stack_module([m.mlp.body for m in models]),
                stack_module([m.mlp.head for m in models]),
            ]
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K, B, T, F = x.shape
        if self.input_dropout is not None:
            x = self.input_dropout(x)
        h = x.permute(1, 2, 0, 3).reshape(B, T, K * F)
        for rnn, drop in zip(self.rnns, self.between, strict=True):
            h = drop(rnn(h))
        H = self.rnns[-1].H
        h = h.view(B, T, 2, K, H).permute(3, 0, 1, 2, 4).reshape(K, B * T, 2 * H)
        for stage in self.stages:
            h = stage(h)
        return h.view(K, B, T, -1)

    def weight_parameters(self) -> list[nn.Parameter]:
        """Weight matrices (what L1, L2 and max-norm act on), fold axis first."""
        heads = [m.weight for m in self.stages.modules() if isinstance(m, StackedLinear)]
        return [w for rnn in self.rnns for w in rnn.weights()] + heads

    def unstack(self) -> list[SequenceRNN]:
        out = []
        for k in range(self.K):
            model = copy.deepcopy(self._template[0])
            for block, rnn in zip(self.rnns, model.rnns, strict=True):
                block.unstack_into(rnn, k)
            unstack_module(self.stages[0], model.mlp.body, k)
            unstack_module(self.stages[1], model.mlp.head, k)
            out.append(model)
        return out


def stack_sequence(models: list[SequenceRNN]) -> StackedSequence:
    return StackedSequence(models)


@register_model("seq", sequence=True, config=SequenceConfig, stacks=stack_sequence)
def build_seq(cfg, in_features: int, out_features: int, frame_dim: int = 0) -> SequenceRNN:
    model = SequenceRNN(in_features, out_features, cfg, activation_factory(cfg), head_norm(cfg))
    apply_init(model, cfg)
    return model
