"""model.name=tabm: k members trained at once, each on its own loss, predicting their mean;
periodic embeddings read the leading numeric columns only; K fold models stack exactly."""

import math

import numpy as np
import pytest
import torch

from pipeline.config import build_config, model_config
from pipeline.errors import ConfigError
from pipeline.model.models import build_model, stack_models
from pipeline.model.tabm import TabM, aggregate
from tests.conftest import assert_stack_computes_its_models


def _models(K=3, out=3, numeric=4, **cfg):
    torch.manual_seed(0)
    cfg = model_config("tabm", **{"k": 4, "hidden": [16, 8], **cfg})
    return [build_model(cfg, 10, out, numeric=numeric) for _ in range(K)]


@pytest.mark.parametrize("out", [1, 3])
def test_evaluation_predicts_the_members_mean(out):
    model = _models(K=1, out=out, dropout=0.0)[0]
    x = torch.randn(6, 10)
    model.train()
    members = model(x)  # (rows, k, outputs)
    assert members.shape == (6, 4, out)
    model.eval()
    pred = model(x)
    if out == 1:
        assert torch.allclose(pred, members.mean(1), atol=1e-6)
    else:  # the log of the mean probability: its softmax is the members' mean probability
        assert torch.allclose(pred.softmax(-1), members.softmax(-1).mean(1), atol=1e-6)
    assert torch.allclose(aggregate(members), pred, atol=1e-6)


def test_members_start_apart_and_share_the_body():
    (model,) = _models(K=1)
    assert set(model.adapter.unique().tolist()) == {-1.0, 1.0}  # random signs
    assert not torch.equal(model.adapter[0], model.adapter[1])
    weights = [p for n, p in model.named_parameters() if n.startswith("body")]
    assert all(p.shape[0] != 4 for p in weights)  # no member axis: one body for all


def test_periodic_embeddings_read_the_leading_numeric_columns_only():
    (model,) = _models(K=1, numeric=4, embedding_dim=5)
    x = torch.randn(7, 10)
    features = model.features(x)
    assert features.shape == (7, 4 * 5 + 6)
    assert torch.equal(features[:, 20:], x[:, 4:])  # the rest passes unchanged
    plain = _models(K=1, numeric=4, embedding="none")[0]
    assert plain.embed is None and torch.equal(plain.features(x), x)
    nothing_numeric = _models(K=1, numeric=0)[0]
    assert nothing_numeric.embed is None


@pytest.mark.parametrize("norm", ["none", "batch", "layer"])
@pytest.mark.parametrize("numeric", [0, 4])
def test_stacked_fold_models_compute_exactly_what_the_separate_ones_do(norm, numeric):
    models = _models(K=3, numeric=numeric, norm=norm, dropout=0.0)
    stacked = stack_models("tabm", models)
    assert_stack_computes_its_models(stacked, models, torch.randn(3, 9, 10))
    # every parameter and buffer has the fold axis (per-fold early stopping copies [k])
    assert all(t.shape[0] == 3 for t in stacked.state_dict().values())


def test_weight_rules_pick_the_same_tensors_on_both_engines():
    """L1, weight decay and max-norm act on a plain model's tensors of ndim >= 2; the stack
    names the same tensors with the fold axis."""
    from pipeline.model.optim import weight_parameters

    models = _models(K=2)
    stacked = stack_models("tabm", models)
    plain = [tuple(p.shape) for p in weight_parameters(models[0])]
    stacked_shapes = [tuple(p.shape[1:]) for p in weight_parameters(stacked)]
    assert sorted(plain) == sorted(stacked_shapes)


@pytest.mark.parametrize(
    "override, message",
    [
        ("model.k=0", "model.k must be an int >= 1"),
        ("model.init=he_normal", "model.name=tabm initialises its layers as TabM does"),
        ("model.frequency_scale=0", "model.frequency_scale must be a float > 0"),
        ("model.embedding=pl", "model.embedding"),
    ],
)
def test_bad_tabm_keys_are_one_line(override, message):
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=["model.name=tabm", override])


def test_the_numeric_count_follows_the_preprocessing():
    """CSV preprocessing puts the numeric values first; build_model hands their count on."""
    from pipeline.tabular.features import ColumnKinds, TabularFeatures, tabular_preprocessor

    kinds = ColumnKinds(
        categorical=np.array([False, True, False]),
        n_categories=[3],
        has_missing=np.array([True, False, False]),
    )
    X = np.array([[1.0, 0, 2.0], [np.nan, 1, 3.0], [3.0, 2, 1.0], [4.0, 0, 0.0]] * 5)
    pre = tabular_preprocessor(TabularFeatures(), "regression", 3, kinds=kinds)
    pre.fit(X.astype(np.float32), np.arange(20, dtype=np.float32))
    assert pre.numeric_ == 2  # two numeric columns lead; the indicator and one-hots follow
    cfg = model_config("tabm", k=2, hidden=[4], embedding_dim=3)
    model = build_model(cfg, pre.n_features_out_, 1, numeric=pre.numeric_)
    assert isinstance(model, TabM) and model.numeric == 2
    assert model.features(torch.zeros(1, pre.n_features_out_)).shape[1] == (
        pre.n_features_out_ - 2 + 2 * 3
    )


def test_periodic_features_are_cosines_and_sines_of_the_frequencies():
    (model,) = _models(K=1, numeric=1, frequencies=2, embedding_dim=3)
    emb = model.embed
    x = torch.tensor([[0.5]])
    v = 2 * math.pi * 0.5 * emb.frequencies[0]
    expected = torch.relu(emb.linear(torch.cat([torch.cos(v), torch.sin(v)])))
    assert torch.allclose(emb(x)[0], expected, atol=1e-6)
