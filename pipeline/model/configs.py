"""The `model` config section of each built-in model: one dataclass per model, registered with
it (`register_model(..., config=ConvConfig)`), so a key that a model does not read is an unknown
key for it, and the message names the models that take it.

`ModelConfig` holds the keys every model reads; a model adds its own keys by subclassing it. This
module imports no torch: the config is checked before any model is built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Literal

from pipeline.errors import ConfigError, require
from pipeline.model.registry import ACTIVATIONS, INITS, MODELS, NORMS


@dataclass
class ModelConfig:
    """model.* keys every model reads: the width of its (head's) hidden layers and their
    activation, norm, dropout and init."""

    name: Annotated[str, MODELS] = "mlp"  # pipeline.model.registry.register_model adds yours
    hidden: list[int] = field(default_factory=lambda: [64, 32])  # small: tabular data is small
    activation: Annotated[str, ACTIVATIONS] = "relu"  # robust default for MLPs
    leaky_slope: float = 0.01  # negative slope of leaky_relu (and its He/Xavier gain)
    norm: Annotated[str, NORMS] = "none"  # batch | layer | group | instance | none
    norm_groups: int = 8  # group norm: groups per layer (must divide every hidden width)
    dropout: float | list[float] = 0.0  # after each hidden layer: one rate, or one per layer
    init: Annotated[str, INITS] = "default"  # default keeps PyTorch's; xavier_*, he_*, ...

    def check_ranges(self) -> None:
        require(all(h >= 1 for h in self.hidden), "model.hidden", "widths >= 1", self.hidden)
        rates = self.dropout if isinstance(self.dropout, list) else [self.dropout]
        for rate in rates:
            require(0.0 <= rate < 1.0, "model.dropout", "rates in [0, 1)", rate)
        require(self.leaky_slope >= 0, "model.leaky_slope", "a float >= 0", self.leaky_slope)
        require(self.norm_groups >= 1, "model.norm_groups", "an int >= 1", self.norm_groups)

    def check(self) -> None:
        self.check_ranges()
        if isinstance(self.dropout, list) and len(self.dropout) != len(self.hidden):
            raise ConfigError(
                f"model.dropout lists {len(self.dropout)} rates for {len(self.hidden)} hidden "
                "layers; give one rate per layer or a single number."
            )


@dataclass
class MLPConfig(ModelConfig):
    input_dropout: float = 0.0  # dropout on the input features

    def check_ranges(self) -> None:
        super().check_ranges()
        ok = 0.0 <= self.input_dropout < 1.0
        require(ok, "model.input_dropout", "a rate in [0, 1)", self.input_dropout)


@dataclass
class FrameConfig(ModelConfig):
    """Models that read each row as frames x features per frame (TIMIT: 11 x 39) and put
    model.hidden on top as their head (gru; conv adds a kernel)."""

    channels: int = 256  # conv channels / recurrent units per direction
    layers: int = 2  # conv or recurrent layers
    frame_dropout: float = 0.0  # dropout after each conv or recurrent layer

    def check_ranges(self) -> None:
        super().check_ranges()
        require(self.channels >= 1, "model.channels", "an int >= 1", self.channels)
        require(self.layers >= 1, "model.layers", "an int >= 1", self.layers)
        ok = 0.0 <= self.frame_dropout < 1.0
        require(ok, "model.frame_dropout", "a rate in [0, 1)", self.frame_dropout)


@dataclass
class ConvConfig(FrameConfig):
    kernel: int = 3  # conv kernel size over frames (odd: the output stays centred)

    def check_ranges(self) -> None:
        super().check_ranges()
        ok = self.kernel >= 1 and self.kernel % 2 == 1
        require(ok, "model.kernel", "an odd int >= 1", self.kernel)


@dataclass
class SequenceConfig(FrameConfig):
    """Sequence models read windows of consecutive rows and label every row; model.channels,
    layers and frame_dropout size their recurrent layers."""

    window: int = 64  # rows per window
    stride: int = 32  # rows between window starts; overlapping outputs are averaged
    cell: Literal["gru", "lstm"] = "gru"  # bidirectional recurrent cell
    input_dropout: float = 0.0  # dropout on the input features

    def check_ranges(self) -> None:
        super().check_ranges()
        ok = 0.0 <= self.input_dropout < 1.0
        require(ok, "model.input_dropout", "a rate in [0, 1)", self.input_dropout)
        require(self.window >= 1, "model.window", "an int >= 1", self.window)
        ok = 1 <= self.stride <= self.window
        require(ok, "model.stride", f"an int in [1, model.window={self.window}]", self.stride)


def config_class(name: str) -> type[ModelConfig]:
    """The config dataclass model `name` was registered with (ModelConfig when none)."""
    return MODELS.info(name)["config"] or ModelConfig


def model_config(name: str = "mlp", **values) -> ModelConfig:
    """The model section of `model.name=name` (its registered dataclass), with `values` set."""
    cls = config_class(name)
    return cls(name=MODELS.canonical(name), **values)


def takers(key: str) -> list[str]:
    """The registered models whose config has model.<key>."""
    return [n for n in MODELS.names() if key in config_class(n).__dataclass_fields__]


def takers_text(key: str, name: str) -> str | None:
    """ "model.<key> applies to the sequence models (seq), not to model.name=mlp." when other
    registered models take the key; None when none does."""
    names = takers(key)
    if not names:
        return None
    kinds = {
        ("sequence" if MODELS.info(n)["sequence"] else "frame" if MODELS.info(n)["frame"] else "")
        for n in names
    }
    kind = {
        frozenset({"frame"}): "the frame models",
        frozenset({"sequence"}): "the sequence models",
        frozenset({"frame", "sequence"}): "the frame and sequence models",
    }.get(frozenset(kinds))
    taken = f"{kind} ({', '.join(names)})" if kind else f"model.name={' or '.join(names)}"
    return f"model.{key} applies to {taken}, not to model.name={name}."


@dataclass
class TabMConfig(ModelConfig):
    """An ensemble of k MLPs trained at once in one network (TabM-mini, Gorishniy et al.
    2024): a shared body, a per-member scaling of its input and a per-member head; numeric
    columns read through periodic embeddings (PLR-lite, Gorishniy et al. 2022)."""

    # TabM's defaults are 3 x 512 and k = 32 on a GPU; these keep a 2-core CPU run of 40,000
    # rows in minutes (docs/tabular-models.md: k = 8 scored about the same at twice the time)
    hidden: list[int] = field(default_factory=lambda: [128, 128])
    dropout: float | list[float] = 0.1  # TabM's default
    k: int = 4  # members per fold
    embedding: Literal["periodic", "none"] = "periodic"  # how numeric columns are read
    embedding_dim: int = 8  # periodic: width of each numeric column's embedding
    frequencies: int = 16  # periodic: sine/cosine pairs per numeric column
    frequency_scale: float = 0.1  # periodic: std of the initial frequencies (RealMLP's 0.1)

    def check_ranges(self) -> None:
        super().check_ranges()
        require(self.k >= 1, "model.k", "an int >= 1", self.k)
        require(self.embedding_dim >= 1, "model.embedding_dim", "an int >= 1", self.embedding_dim)
        require(self.frequencies >= 1, "model.frequencies", "an int >= 1", self.frequencies)
        ok = self.frequency_scale > 0
        require(ok, "model.frequency_scale", "a float > 0", self.frequency_scale)

    def check(self) -> None:
        super().check()
        if self.init != "default":
            raise ConfigError(
                f"model.init={self.init}: model.name=tabm initialises its layers as TabM does "
                "(uniform in +-1/sqrt(fan-in), random-sign member scalings); leave model.init "
                "at default."
            )
