"""model.name=tabm: k MLPs trained at once per fold, TabM-mini style (Gorishniy et al. 2024,
"TabM: Advancing Tabular Deep Learning with Parameter-Efficient Ensembling"), with periodic
embeddings of the numeric columns (PLR-lite, Gorishniy et al. 2022, "On Embeddings for
Numerical Features in Tabular Deep Learning").

- Numeric columns (the leading `numeric` columns of a row) go through periodic embeddings:
  x -> [cos(2 pi f x), sin(2 pi f x)] with learned frequencies f per column, then one linear
  layer shared by the columns and a ReLU; the other columns (missing indicators, encoded
  categories) pass as they are.
- Member i scales the row by its own vector r_i (initialised to random signs, so the members
  start apart), runs the shared body (the MLP's hidden layers) and its own linear head.
- Training: each member's loss against the target, averaged (Task.loss's member axis), so
  the network outputs (..., k, outputs) in training mode. Evaluation: the members' mean
  (regression, one output) or the log of their mean probability (classification), so the
  output is an ordinary prediction and everything downstream (validation, MC dropout,
  blends) sees one model.

It stacks for the fast engine (`stack_tabm`): K fold models become one StackedTabM whose every
parameter has a leading fold axis; `unstack()` gives the K models back. Plain PyTorch ops
(matmuls, einsum), the same on the CPU and on CUDA.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from pipeline.model.configs import TabMConfig
from pipeline.model.parts import MLP, activation_factory, norm_factory
from pipeline.model.registry import register_model
from pipeline.model.stacking import StackedLinear, _stack, stack_module, unstack_module


class Periodic(nn.Module):
    """Periodic embeddings of n numeric columns: (..., n) -> (..., n * width)."""

    def __init__(self, n: int, frequencies: int, width: int, scale: float):
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(n, frequencies) * scale)
        self.linear = nn.Linear(2 * frequencies, width)  # shared by the columns (lite)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        v = 2 * math.pi * x.unsqueeze(-1) * self.frequencies  # (..., n, m)
        e = self.act(self.linear(torch.cat([torch.cos(v), torch.sin(v)], dim=-1)))
        return e.flatten(-2)


def _uniform(shape: tuple, fan_in: int) -> torch.Tensor:
    bound = 1 / math.sqrt(fan_in)
    return torch.empty(shape).uniform_(-bound, bound)


def aggregate(out: torch.Tensor) -> torch.Tensor:
    """(..., k, outputs) member outputs -> one prediction's outputs: the members' mean for a
    single output (regression), the log of their mean probability for classes (a softmax of
    it is the members' mean probability)."""
    if out.shape[-1] == 1:
        return out.mean(-2)
    k = out.shape[-2]
    return torch.logsumexp(out.log_softmax(-1), dim=-2) - math.log(k)


class TabM(nn.Module):
    """One fold's ensemble of k members: (B, in_features) -> (B, k, out) when training, the
    aggregated (B, out) otherwise."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden: list[int],
        k: int,
        numeric: int = 0,
        embedding: dict | None = None,
        act_layer=nn.ReLU,
        norm_layer=None,
        dropout: float | list[float] = 0.0,
    ):
        super().__init__()
        self.k, self.numeric = k, numeric if embedding else 0
        self.embed = None
        width = in_features
        if self.numeric:
            self.embed = Periodic(self.numeric, **embedding)
            width = in_features - self.numeric + self.numeric * self.embed.linear.out_features
        # random signs: the members differ from the first step (TabM-mini's initialisation)
        self.adapter = nn.Parameter(torch.randint(0, 2, (k, width)).float() * 2 - 1)
        # the members' shared hidden layers: the MLP's, without its head
        self.body = MLP(width, 1, hidden, act_layer, norm_layer, dropout).body
        last = hidden[-1] if hidden else width
        self.head_weight = nn.Parameter(_uniform((k, out_features, last), last))
        self.head_bias = nn.Parameter(_uniform((k, out_features), last))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.embed is None:
            return x
        return torch.cat([self.embed(x[..., : self.numeric]), x[..., self.numeric :]], dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x)  # (B, W)
        B = h.shape[0]
        h = (h.unsqueeze(1) * self.adapter).reshape(B * self.k, -1)
        h = self.body(h).view(B, self.k, -1)
        out = torch.einsum("bkh,koh->bko", h, self.head_weight) + self.head_bias
        return out if self.training else aggregate(out)


class StackedTabM(nn.Module):
    """K fold models of one TabM, every parameter and buffer with a leading fold axis:
    (K, B, in_features) -> (K, B, k, out) when training, (K, B, out) otherwise."""

    def __init__(self, models: list[TabM]):
        super().__init__()
        first = models[0]
        self.K, self.k, self.numeric = len(models), first.k, first.numeric
        self._template = [copy.deepcopy(first).cpu()]  # in a list: not a submodule
        self.frequencies = self.embed_linear = None
        if first.embed is not None:
            self.frequencies = nn.Parameter(_stack([m.embed.frequencies for m in models]))
            self.embed_linear = StackedLinear([m.embed.linear for m in models])
        self.adapter = nn.Parameter(_stack([m.adapter for m in models]))
        self.body = stack_module([m.body for m in models])
        self.head_weight = nn.Parameter(_stack([m.head_weight for m in models]))
        self.head_bias = nn.Parameter(_stack([m.head_bias for m in models]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (K, B, F)
        K, B, _ = x.shape
        if self.frequencies is not None:
            n = self.numeric
            v = 2 * math.pi * x[..., :n].unsqueeze(-1) * self.frequencies.unsqueeze(1)
            e = torch.cat([torch.cos(v), torch.sin(v)], dim=-1).reshape(K, B * n, -1)
            e = torch.relu(self.embed_linear(e)).reshape(K, B, -1)
            x = torch.cat([e, x[..., n:]], dim=-1)
        h = (x.unsqueeze(2) * self.adapter.unsqueeze(1)).reshape(K, B * self.k, -1)
        for layer in self.body:
            h = layer(h)
        h = h.view(K, B, self.k, -1)
        out = torch.einsum("gbkh,gkoh->gbko", h, self.head_weight) + self.head_bias.unsqueeze(1)
        return out if self.training else aggregate(out)

    def weight_parameters(self) -> list[nn.Parameter]:
        """What the plain model's weight rule (ndim >= 2) picks, with the fold axis: L1, weight
        decay and max-norm act on the same tensors on both engines."""
        return [p for p in self.parameters() if p.ndim >= 3]

    def unstack(self) -> list[TabM]:
        out = []
        for k in range(self.K):
            model = copy.deepcopy(self._template[0])
            if self.frequencies is not None:
                model.embed.frequencies.data.copy_(self.frequencies[k])
                self.embed_linear.unstack_into(model.embed.linear, k)
            model.adapter.data.copy_(self.adapter[k])
            unstack_module(self.body, model.body, k)
            model.head_weight.data.copy_(self.head_weight[k])
            model.head_bias.data.copy_(self.head_bias[k])
            out.append(model)
        return out


def stack_tabm(models: list[TabM]) -> StackedTabM:
    return StackedTabM(models)


@register_model("tabm", config=TabMConfig, stacks=stack_tabm, numeric=True)
def build_tabm(cfg, in_features: int, out_features: int, frame_dim: int = 0, numeric: int = 0):
    embedding = None
    if cfg.embedding == "periodic" and numeric > 0:
        embedding = {
            "frequencies": cfg.frequencies,
            "width": cfg.embedding_dim,
            "scale": cfg.frequency_scale,
        }
    return TabM(
        in_features,
        out_features,
        hidden=list(cfg.hidden),
        k=cfg.k,
        numeric=numeric,
        embedding=embedding,
        act_layer=activation_factory(cfg),
        norm_layer=norm_factory(cfg, channel_axis=False),
        dropout=cfg.dropout,
    )
