"""Stacking is a registered fact of a model: a user's model that declares how it stacks trains
on the fast engine, exactly as its K separate copies would; one that does not falls back to the
plain engine with the reason."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from pipeline.engine.cv import CrossValidator
from pipeline.model import registry
from pipeline.model.models import stack_models
from pipeline.model.stacking import stack_body_head
from tests.conftest import registered, small_config


class Toy(nn.Module):
    """A user's model written as head(body(x)) from layers that stack."""

    def __init__(self, in_features: int, out_features: int, width: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_features, width), nn.Tanh(), nn.LayerNorm(width))
        self.head = nn.Linear(width, out_features)

    def forward(self, x):
        return self.head(self.body(x))


def build_toy(cfg, in_features, out_features, frame_dim=0):
    return Toy(in_features, out_features, cfg.hidden[0])


def test_a_toy_model_that_declares_it_stacks_trains_on_the_fast_engine(demo, demo_dir):
    with registered(registry.MODELS, "toy", build_toy, stacks=stack_body_head):
        cfg = small_config(demo, "model.name=toy", "model.hidden=[16]", "train.engine=fast")
        cv = CrossValidator(demo, cfg, progress=False).fit(demo.load_train(demo_dir))
    assert cv.engine_ == "fast"
    assert all(isinstance(fold.module.model, Toy) for fold in cv.folds_)
    assert np.isfinite(cv.fold_scores_).all() and cv.oof_score_ > 0.5  # 10 classes: chance 0.1


def test_the_stack_of_a_toy_model_computes_what_its_copies_do():
    torch.manual_seed(0)
    models = [Toy(5, 3, 8) for _ in range(4)]
    with registered(registry.MODELS, "toy", build_toy, stacks=stack_body_head):
        stacked = stack_models("toy", models)
    x = torch.randn(4, 7, 5)
    expected = torch.stack([m(x[k]) for k, m in enumerate(models)])
    torch.testing.assert_close(stacked(x), expected)
    for back, model in zip(stacked.unstack(), models, strict=True):
        for key, value in model.state_dict().items():
            torch.testing.assert_close(back.state_dict()[key], value)


def test_a_toy_model_without_the_fact_trains_on_the_plain_engine_and_says_why(demo, demo_dir):
    with registered(registry.MODELS, "toy", build_toy):
        cfg = small_config(demo, "model.name=toy", "model.hidden=[16]", "cv.folds=2")
        cv = CrossValidator(demo, cfg, progress=False).fit(demo.load_train(demo_dir))
    assert cv.engine_ == "plain"
    assert "a Toy model (registered without stacks=" in cv.engine_note_
