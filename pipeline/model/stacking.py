"""K models of one architecture stacked into one module, so one step trains all K folds.

At tabular and TIMIT sizes a GPU (and even a CPU) spends most of a small model's step on
per-step overhead, not arithmetic: K stacked models cost about the same per step as one.
A model says whether and how it stacks when it is registered (`register_model(...,
stacks=stack_body_head)`): the function takes K ordinary models, built and initialised exactly
as the plain engine builds them, and returns a `Stacked` whose every parameter and buffer has a
leading fold axis; `unstack()` gives K ordinary models back, so prediction, MC dropout and
checkpoints after training are the plain engine's own. Inputs are (K, B, features): fold k's
batch goes to model k.

Layers that stack: Linear, BatchNorm1d, LayerNorm, GroupNorm, Dropout and the registry's
activations, and in a conv stack Conv1d and InstanceNorm1d. Anything else is refused with a
message that names the fallback, train.engine=plain. A new model built from these layers as
`head(body(x))` registers `stacks=stack_body_head` and trains on the fast engine.
"""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.errors import ConfigError


class NotStackable(ConfigError):
    """A model or layer the fast engine cannot stack (train.engine=plain can train it); the
    engine choice (pipeline/engine/choice.py) puts the message into its reason."""


STATELESS = (
    nn.Dropout,
    nn.Identity,
    nn.ReLU,
    nn.LeakyReLU,
    nn.ELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Tanh,
    nn.Sigmoid,
)


def _stack(tensors: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([t.detach().clone() for t in tensors])


class _StackedAffine(nn.Module):
    """A layer with a weight and a bias per fold, stacked along a leading fold axis."""

    def __init__(self, layers: list[nn.Module]):
        super().__init__()
        self.weight = nn.Parameter(_stack([m.weight for m in layers]))  # (K, *weight shape)
        self.bias = nn.Parameter(_stack([m.bias for m in layers]))  # (K, *bias shape)

    def unstack_into(self, layer: nn.Module, k: int) -> None:
        layer.weight.data.copy_(self.weight[k])
        layer.bias.data.copy_(self.bias[k])


class StackedLinear(_StackedAffine):
    """y_k = x_k W_k^T + b_k for every fold k, as one batched matmul."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (K, B, in)
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class StackedBatchNorm(_StackedAffine):
    """Batch norm with statistics per fold and channel: (K, B, C) is seen as B rows of K*C
    channels, so each fold's channels are normalised over that fold's batch only. In a conv
    stack the input is (B, K*C, L) already."""

    def __init__(self, layers: list[nn.BatchNorm1d], conv: bool = False):
        super().__init__(layers)  # weight, bias: (K, C)
        first = layers[0]
        self.conv = conv
        self.eps, self.momentum = first.eps, first.momentum
        self.register_buffer("running_mean", _stack([m.running_mean for m in layers]))
        self.register_buffer("running_var", _stack([m.running_var for m in layers]))
        self.register_buffer(
            "num_batches_tracked", _stack([m.num_batches_tracked for m in layers])
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.conv:  # (K, B, C) -> (B, K*C)
            K, B, C = x.shape
            flat = x.transpose(0, 1).reshape(B, K * C)
        else:
            flat = x
        if self.training:
            self.num_batches_tracked.add_(1)
        out = F.batch_norm(
            flat,
            self.running_mean.view(-1),  # views: F.batch_norm updates the buffers in place
            self.running_var.view(-1),
            self.weight.reshape(-1),
            self.bias.reshape(-1),
            self.training,
            self.momentum,
            self.eps,
        )
        return out if self.conv else out.reshape(B, K, C).transpose(0, 1)

    def unstack_into(self, layer: nn.BatchNorm1d, k: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            getattr(layer, name).data.copy_(getattr(self, name)[k])


class StackedLayerNorm(_StackedAffine):
    def __init__(self, layers: list[nn.LayerNorm]):
        super().__init__(layers)  # weight, bias: (K, C)
        self.shape, self.eps = layers[0].normalized_shape, layers[0].eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (K, B, C)
        out = F.layer_norm(x, self.shape, eps=self.eps)
        return out * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)


class StackedGroupNorm(_StackedAffine):
    """Group norm of each fold's channels; folds own whole groups, so one GroupNorm of
    K*groups groups over K*C channels is exact."""

    def __init__(self, layers: list[nn.Module], conv: bool = False):
        super().__init__(layers)  # weight, bias: (K, C)
        first = layers[0]
        self.conv = conv
        self.groups, self.eps = first.num_groups, first.eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K = self.weight.shape[0]
        if not self.conv:  # (K, B, C): per row and fold
            _, B, C = x.shape
            out = F.group_norm(x.reshape(K * B, C), self.groups, eps=self.eps).reshape(K, B, C)
            return out * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)
        return F.group_norm(  # conv: (B, K*C, L)
            x, K * self.groups, self.weight.reshape(-1), self.bias.reshape(-1), self.eps
        )


class StackedInstanceNorm(StackedGroupNorm):
    """Instance norm over (B, K*C, L): one group per channel."""

    def __init__(self, layers: list[nn.InstanceNorm1d], conv: bool = True):
        _StackedAffine.__init__(self, layers)
        self.conv = True
        self.eps = layers[0].eps
        self.groups = layers[0].num_features


class StackedConv1d(_StackedAffine):
    """K convolutions as one grouped convolution over (B, K*C_in, L)."""

    def __init__(self, layers: list[nn.Conv1d]):
        super().__init__(layers)  # weight: (K, out, in, ks)
        self.padding = layers[0].padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        K = self.weight.shape[0]
        return F.conv1d(
            x, self.weight.flatten(0, 1), self.bias.reshape(-1), padding=self.padding, groups=K
        )


# layer type -> its stacked version, taking (the K layers, whether they sit in a conv stack)
STACKERS: list[tuple[type, type]] = [
    (nn.Linear, lambda layers, conv: StackedLinear(layers)),
    (nn.BatchNorm1d, StackedBatchNorm),
    (nn.LayerNorm, lambda layers, conv: StackedLayerNorm(layers)),
    (nn.InstanceNorm1d, StackedInstanceNorm),
    (nn.GroupNorm, StackedGroupNorm),
    (nn.Conv1d, lambda layers, conv: StackedConv1d(layers)),
]


def stack_module(modules: list[nn.Module], conv: bool = False) -> nn.Module:
    """conv: the layers sit in a conv stack, whose activations are (B, K*C, L)."""
    first = modules[0]
    if isinstance(first, nn.Sequential):
        return nn.Sequential(
            *[stack_module([m[i] for m in modules], conv) for i in range(len(first))]
        )
    for layer, stacker in STACKERS:
        if isinstance(first, layer):
            return stacker(modules, conv)
    if isinstance(first, STATELESS):
        return copy.deepcopy(first)
    raise NotStackable(f"a {type(first).__name__} layer (it does not stack)")


def unstack_module(stacked: nn.Module, target: nn.Module, k: int) -> None:
    if isinstance(stacked, nn.Sequential):
        for s, t in zip(stacked, target, strict=True):
            unstack_module(s, t, k)
    elif hasattr(stacked, "unstack_into"):
        stacked.unstack_into(target, k)


def _part(model: nn.Module, path: str) -> nn.Module:
    for name in path.split("."):
        model = getattr(model, name)
    return model


class Stacked(nn.Module):
    """K stacked copies of one model, applied part by part.

    `parts`: the dotted names of the model's parts in the order its forward applies them to a
    flat row (e.g. ("body", "head")). `conv`: (name of a conv stack, frames, features per frame)
    for a model whose forward first reads the row as frames through that stack (FrameConv)."""

    def __init__(
        self,
        models: list[nn.Module],
        parts: tuple[str, ...],
        conv: tuple[str, int, int] | None = None,
    ):
        super().__init__()
        self.K = len(models)
        self.parts = parts
        self.conv = conv
        # the architecture unstack() rebuilds; in a list so it is not a submodule (its
        # parameters must not join the stack's)
        self._template = [copy.deepcopy(models[0]).cpu()]
        self.convs = None
        if conv is not None:
            name, self.frames, self.frame_dim = conv
            self.convs = stack_module([_part(m, name) for m in models], conv=True)
        self.stages = nn.ModuleList(stack_module([_part(m, p) for m in models]) for p in parts)
        self._flat: list[nn.Module] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (K, B, features) -> (K, B, out)
        if self.convs is not None:
            K, B, _ = x.shape
            h = x.view(K, B, self.frames, self.frame_dim).permute(1, 0, 3, 2)  # (B, K, D, T)
            h = self.convs(h.reshape(B, K * self.frame_dim, self.frames))  # (B, K*C, T)
            x = h.reshape(B, K, -1).transpose(0, 1)  # (K, B, C*T), flattened like the plain
        for layer in self._layers:
            x = layer(x)
        return x

    @property
    def _layers(self) -> list[nn.Module]:
        """The layers in order, called one after another (no nested Sequential calls)."""
        if self._flat is None:
            self._flat = []
            for stage in self.stages:
                self._flat.extend(stage if isinstance(stage, nn.Sequential) else [stage])
        return self._flat

    def weight_parameters(self) -> list[nn.Parameter]:
        """Weight matrices/kernels (what L1, L2 and max-norm act on), fold axis first."""
        return [m.weight for m in self.modules() if isinstance(m, (StackedLinear, StackedConv1d))]

    def unstack(self) -> list[nn.Module]:
        out = []
        for k in range(self.K):
            model = copy.deepcopy(self._template[0])
            if self.convs is not None:
                unstack_module(self.convs, _part(model, self.conv[0]), k)
            for stage, path in zip(self.stages, self.parts, strict=True):
                unstack_module(stage, _part(model, path), k)
            out.append(model)
        return out


def stack_body_head(models: list[nn.Module]) -> Stacked:
    """For models whose forward is `head(body(x))` on flat rows (the MLP)."""
    return Stacked(models, ("body", "head"))


def stack_frames(models: list[nn.Module]) -> Stacked:
    """For models whose forward is a conv stack over frames (`convs`), flattened into an MLP
    (`mlp.body`, `mlp.head`): the frame conv model."""
    first = models[0]
    return Stacked(models, ("mlp.body", "mlp.head"), conv=("convs", first.frames, first.frame_dim))
