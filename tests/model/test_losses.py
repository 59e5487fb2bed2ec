"""The training loss follows the metric (Task.loss, training_task): l1 for absolute-error
metrics, squared error for the rest, Huber when asked, label smoothing where the metric scores
labels; and an ensemble's members each train on their own loss."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from pipeline.config import build_config
from pipeline.errors import ConfigError
from pipeline.model.metrics import (
    Task,
    get_metric,
    loss_for,
    stop_metric,
    training_task,
)

REG, BIN, MULTI = Task("regression"), Task("classification", 2), Task("classification", 4)


@pytest.mark.parametrize(
    "metric, task, loss",
    [
        ("mae", REG, "l1"),
        ("medae", REG, "l1"),
        ("rmse", REG, "mse"),
        ("r2", REG, "mse"),
        ("rmsle", REG, "mse"),  # squared error of log1p(y): the network learns log1p
        ("auc", BIN, "cross_entropy"),
        ("accuracy", MULTI, "cross_entropy"),
    ],
)
def test_auto_loss_follows_the_metric(metric, task, loss):
    assert loss_for(get_metric(metric), task) == loss
    trained = training_task(task, get_metric(metric), build_config().train)
    if not task.is_classification:
        assert trained.loss_name == loss


@pytest.mark.parametrize(
    "override, metric, task, message",
    [
        ("train.loss=l1", "accuracy", MULTI, "train.loss=l1 is a regression loss"),
        ("train.loss=cross_entropy", "rmse", REG, "cross_entropy is a classification loss"),
        ("train.label_smoothing=0.1", "logloss", MULTI, "pulls the probabilities that logloss"),
        ("train.label_smoothing=0.1", "rmse", REG, "label_smoothing applies to classification"),
        ("train.label_smoothing=auto", "auc", BIN, None),  # auto: 0 for probabilities
    ],
)
def test_losses_the_task_cannot_train_are_refused(override, metric, task, message):
    cfg = build_config(overrides=[override])
    if message is None:
        assert training_task(task, get_metric(metric), cfg.train).label_smoothing == 0.0
        return
    with pytest.raises(ConfigError, match=message):
        training_task(task, get_metric(metric), cfg.train)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["train.huber_delta=2"], "huber_delta applies to train.loss=huber"),
        (["train.huber_delta=0", "train.loss=huber"], "train.huber_delta must be a float > 0"),
        (["train.label_smoothing=1.0"], r"train.label_smoothing must be a float in \[0, 1\)"),
        (["train.loss=quantile"], "train.loss"),
    ],
)
def test_bad_loss_keys_are_one_line(overrides, message):
    with pytest.raises(ConfigError, match=message):
        build_config(overrides=overrides)


def test_each_regression_loss_is_its_formula():
    out, y = torch.tensor([[0.0], [1.0], [5.0]]), torch.tensor([1.0, 1.0, 1.0])
    cfg = build_config(overrides=["train.loss=huber", "train.huber_delta=2.0"]).train
    huber = training_task(REG, get_metric("rmse"), cfg)
    l1 = training_task(REG, get_metric("mae"), build_config().train)
    mse = training_task(REG, get_metric("rmse"), build_config().train)
    assert float(l1.loss(out, y)) == pytest.approx((1 + 0 + 4) / 3)
    assert float(mse.loss(out, y)) == pytest.approx((1 + 0 + 16) / 3)
    # huber with delta 2: 0.5 e^2 below 2, 2 (|e| - 1) above
    assert float(huber.loss(out, y)) == pytest.approx((0.5 + 0 + 2 * (4 - 1)) / 3)


def test_label_smoothing_is_automatic_only_where_the_metric_scores_labels():
    assert build_config().train.label_smoothing == 0.0  # plug-ins: off
    cfg = build_config(overrides=["train.label_smoothing=auto"]).train  # CSV competitions
    assert training_task(MULTI, get_metric("accuracy"), cfg).label_smoothing == 0.1
    assert training_task(MULTI, get_metric("logloss"), cfg).label_smoothing == 0.0
    assert training_task(BIN, get_metric("auc"), cfg).label_smoothing == 0.0
    off = build_config().train
    assert training_task(MULTI, get_metric("accuracy"), off).label_smoothing == 0.0
    smoothed = training_task(MULTI, get_metric("accuracy"), cfg)
    logits, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    expected = F.cross_entropy(logits, y, label_smoothing=0.1)
    assert torch.allclose(smoothed.loss(logits, y), expected)


@pytest.mark.parametrize("task", [REG, MULTI])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_members_each_train_on_their_own_loss(task, reduction):
    """(rows, k, outputs): the mean over members of each member's loss, per row; the sum
    over rows for reduction=sum (the fast engine's per-fold sum)."""
    torch.manual_seed(0)
    out = torch.randn(5, 3, task.n_outputs)
    y = torch.randint(0, 4, (5,)) if task.is_classification else torch.randn(5)
    per_member = torch.stack([task.loss(out[:, i], y, reduction=reduction) for i in range(3)])
    assert torch.allclose(task.loss(out, y, reduction=reduction), per_member.mean())
    stacked = torch.stack([out, 2 * out])  # two folds: (K, rows, k, outputs)
    both = task.loss(stacked, torch.stack([y, y]), reduction="sum")
    assert torch.allclose(both, task.loss(out, y, "sum") + task.loss(2 * out, y, "sum"))


def test_a_loss_monitor_watches_the_loss_the_network_trains():
    mae = get_metric("mae")
    cfg = build_config(overrides=["train.monitor=loss"]).train
    assert stop_metric(mae, training_task(REG, mae, cfg), "loss").name == "mae"
    assert stop_metric(get_metric("rmse"), REG, "loss").name == "mse"


def test_an_l1_network_predicts_the_median_and_an_mse_one_the_mean():
    """Skewed targets and features that say nothing: the best constant is what each loss
    learns (mae: the median; rmse: the mean), which is why mae trains l1."""
    from pipeline.competition.base import Competition, TrainData
    from pipeline.engine.cv import CrossValidator
    from pipeline.tabular.features import TabularFeatures, tabular_preprocessor

    rng = np.random.default_rng(0)
    n = 400
    y = rng.exponential(10.0, n).astype(np.float32)  # mean 10, median 6.9
    train = TrainData(X=rng.normal(size=(n, 2)).astype(np.float32), y=y, ids=np.arange(n))

    class Skewed(Competition):
        name, task, features_cls = "skewed", REG, TabularFeatures

        def make_preprocessor(self, cfg, train):
            return tabular_preprocessor(cfg.features, "regression", 2)

    predicted = {}
    for metric in ("mae", "rmse"):
        comp = Skewed()
        comp.metric_name = metric
        cfg = build_config(
            TabularFeatures(),
            overrides=[
                "model.hidden=[8]",
                "train.epochs=12",
                "train.patience=0",
                "train.batch_size=32",
                "optim.lr=0.02",
                "cv.folds=2",
            ],
        )
        cv = CrossValidator(comp, cfg, progress=False).fit(train)
        predicted[metric] = float(np.median(cv.oof_))
    assert abs(predicted["mae"] - np.median(y)) < 1.5
    assert abs(predicted["rmse"] - y.mean()) < 1.5
