"""The model registry's built-in entries and `build_model`, what the engines call.

`model.name` picks a builder from `MODELS` (pipeline.model.registry). Add your own architecture
with the `register_model` decorator, from a competition plug-in (competitions/<name>/__init__.py)
or any module imported before the config is read, and select it with `model.name=<name>`:

    @register_model("mine", config=MineConfig, stacks=stack_body_head)
    def build_mine(cfg, in_features: int, out_features: int, frame_dim: int) -> nn.Module: ...

The contract: `cfg` is the model's config section, an instance of the dataclass it was
registered with (`config=`, a subclass of pipeline.model.configs.ModelConfig; ModelConfig when
none is given), so the config accepts exactly the keys the model reads; `in_features` is the
width of a preprocessed row; `out_features` the number of outputs (1 for regression, one logit
per class for classification, no softmax); `frame_dim` > 0 when a row is frames x frame_dim
features (TIMIT: 11 x 39), else 0. It returns an `nn.Module` mapping a float batch
(N, in_features) to (N, out_features). Facts given at registration: `frame=True` (reads rows as
frames), `sequence=True` (reads windows of consecutive rows), `stacks=` (how K copies stack for
the fast engine: pipeline.model.stacking). The parts in pipeline.model.parts (`MLP`,
`activation_factory`, `norm_factory`, `apply_init`) give a new model the switches the built-in
ones have.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from pipeline.errors import ConfigError
from pipeline.model.registry import MODELS
from pipeline.model.stacking import NotStackable, Stacked


def build_model(
    cfg,
    in_features: int,
    out_features: int,
    frame_dim: int = 0,
    embed: Sequence[tuple[int, int]] = (),
    numeric: int | None = None,
) -> nn.Module:
    """cfg is the `model` config section; frame_dim > 0 when rows are frames x frame_dim;
    `embed`: (categories, width) of each category-code column at the end of a row, read
    through learned embeddings (EmbeddingInput) before the model; `numeric`: how many leading
    columns of a row are numeric values (None: all), for models registered with numeric=True."""
    builder = MODELS.lookup(cfg.name)
    if MODELS.info(cfg.name)["numeric"]:
        count = in_features - len(embed) if numeric is None else numeric
        builder = partial(builder, numeric=count)
    if not embed:
        return builder(cfg, in_features, out_features, frame_dim)
    if frame_dim:
        raise ConfigError("Category embeddings need a model that reads flat rows, not frames.")
    dense = in_features - len(embed) + sum(width for _, width in embed)
    inner = builder(cfg, dense, out_features, frame_dim)
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


def stack_models(name: str, models: list[nn.Module]) -> Stacked:
    """K fold models of `model.name=name` stacked for the fast engine, as the model was
    registered (`stacks=`); NotStackable with the reason otherwise."""
    info = MODELS.info(name)
    if isinstance(models[0], EmbeddingInput):
        raise NotStackable("category embeddings (features.encode/high_cardinality=embed)")
    if info["stacks"] is None and info["sequence"]:
        raise NotStackable("a sequence model registered without stacks= (one fold at a time)")
    if info["stacks"] is None:
        stack = [n for n in MODELS.names() if MODELS.info(n)["stacks"] is not None]
        raise NotStackable(
            f"a {type(models[0]).__name__} model (registered without stacks=; the models that "
            f"stack: {', '.join(stack)})"
        )
    return info["stacks"](models)
