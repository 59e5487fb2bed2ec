"""The multi-layer perceptron (model.name=mlp): the default for tabular rows."""

from __future__ import annotations

from pipeline.model.configs import MLPConfig
from pipeline.model.parts import MLP, activation_factory, apply_init, norm_factory
from pipeline.model.registry import register_model
from pipeline.model.stacking import stack_body_head


@register_model("mlp", config=MLPConfig, stacks=stack_body_head)
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
