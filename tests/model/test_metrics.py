import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from pipeline.errors import ConfigError, DataError
from pipeline.model.metrics import (
    METRICS,
    Metric,
    Task,
    check_target,
    check_task,
    get_metric,
    list_metrics,
    register_metric,
    stop_metric,
)

REG, BIN, MULTI = Task("regression"), Task("classification", 2), Task("classification", 5)


def test_metrics_match_reference_computations():
    y, p = np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])
    assert get_metric("rmse")(y, p) == pytest.approx(np.sqrt((0.25 + 0 + 1) / 3))
    assert get_metric("mae")(y, p) == pytest.approx(0.5)
    proba = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert get_metric("accuracy")(np.array([0, 1, 1]), proba) == pytest.approx(2 / 3)


@pytest.mark.parametrize("name", list(METRICS))
def test_each_metric_knows_its_direction(name):
    metric = get_metric(name)
    assert metric.mode == ("max" if metric.greater_is_better else "min")


def _regression(n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.gamma(2.0, 3.0, n).astype(np.float32)  # positive: rmsle and mape are defined
    return y, (y + rng.normal(0, 2, n)).astype(np.float32)


def _classification(k, n=300, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]  # better than chance
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return y, proba.astype(np.float32)


def _binary_or_macro(fn):
    def ref(y, p):
        average = "binary" if p.shape[1] == 2 else "macro"
        return fn(y, p.argmax(1), average=average, zero_division=0)

    return ref


def _auc(y, p):
    if p.shape[1] == 2:
        return skm.roc_auc_score(y, p[:, 1])
    q = p / p.sum(1, keepdims=True, dtype=np.float64)
    return skm.roc_auc_score(y, q, multi_class="ovr", labels=np.arange(p.shape[1]))


# each built-in metric against sklearn called directly (predictions: values or probabilities)
SKLEARN = {
    "rmse": lambda y, p: skm.root_mean_squared_error(y, p),
    "mse": skm.mean_squared_error,
    "mae": skm.mean_absolute_error,
    "rmsle": lambda y, p: skm.root_mean_squared_log_error(y, np.clip(p, 0, None)),  # clips
    "r2": skm.r2_score,
    "medae": skm.median_absolute_error,
    "mape": skm.mean_absolute_percentage_error,
    "accuracy": lambda y, p: skm.accuracy_score(y, p.argmax(1)),
    "balanced_accuracy": lambda y, p: skm.balanced_accuracy_score(y, p.argmax(1)),
    "f1": _binary_or_macro(skm.f1_score),
    "precision": _binary_or_macro(skm.precision_score),
    "recall": _binary_or_macro(skm.recall_score),
    "f1_macro": lambda y, p: skm.f1_score(y, p.argmax(1), average="macro"),
    "f1_micro": lambda y, p: skm.f1_score(y, p.argmax(1), average="micro"),
    "f1_weighted": lambda y, p: skm.f1_score(y, p.argmax(1), average="weighted"),
    "mcc": lambda y, p: skm.matthews_corrcoef(y, p.argmax(1)),
    "qwk": lambda y, p: skm.cohen_kappa_score(
        y, p.argmax(1), labels=np.arange(p.shape[1]), weights="quadratic"
    ),
    "auc": _auc,
    "logloss": lambda y, p: skm.log_loss(
        y, p / p.sum(1, keepdims=True, dtype=np.float64), labels=np.arange(p.shape[1])
    ),
}


def _data(metric: Metric, k: int):
    return _regression() if metric.task_kind == "regression" else _classification(k)


def _cases():
    """(name, K) for every registered metric: K classes for classification, 0 otherwise."""
    for name in METRICS:
        kind = get_metric(name).task_kind
        for k in (0,) if kind == "regression" else (2, 3, 5):
            yield pytest.param(name, k, id=f"{name}-{k}" if k else name)


@pytest.mark.parametrize(("name", "k"), list(_cases()))
def test_each_metric_is_sklearns_on_random_data(name, k):
    if name not in SKLEARN:
        pytest.skip(f"{name} is not a built-in metric")
    metric = get_metric(name)
    y, p = _data(metric, k)
    assert metric(y, p) == pytest.approx(SKLEARN[name](y, p), rel=1e-6, abs=1e-9)


@pytest.mark.parametrize(("name", "k"), list(_cases()))
def test_torch_fn_gives_the_numpy_number(name, k):
    metric = get_metric(name)
    if metric.torch_fn is None:
        pytest.skip(f"{name} has no torch fn (scored on the host)")
    y, p = _data(metric, k)
    for y_, p_ in ((y, p), (y[:7], p[:7])):  # a handful of rows: absent classes, ties
        expected = metric(y_, p_)
        got = metric.torch(torch.from_numpy(y_), torch.from_numpy(p_))
        assert got.dim() == 0 and float(got) == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_label_metrics_agree_on_folds_with_absent_classes_and_constant_predictions():
    cases = [
        (np.array([0, 1, 1, 2, 3, 3, 0, 1]), np.eye(5)[[0, 1, 4, 2, 3, 0, 0, 1]]),  # 4 not in y
        (np.array([0, 1, 1, 2, 0]), np.eye(3)[[1, 1, 1, 1, 1]]),  # one class predicted
        (np.array([0, 0, 0]), np.eye(2)[[0, 0, 0]]),  # no positives at all
    ]
    for name in list_metrics(MULTI):
        metric = get_metric(name)
        if metric.torch_fn is None:
            continue
        for y, p in cases:
            p = p.astype(np.float32)
            expected = metric(y, p)
            got = float(metric.torch(torch.from_numpy(y), torch.from_numpy(p)))
            assert got == pytest.approx(expected, abs=1e-6, nan_ok=True), (name, y)


def test_qwk_weighs_by_distance_between_class_numbers_even_with_a_class_absent():
    y, proba = np.array([0, 1, 3, 3]), np.eye(4)[[0, 1, 3, 2]]
    # class 2 neither true nor predicted: sklearn's default would number the classes present
    # (0, 1, 3 -> 0, 1, 2) and call 3 -> 1 one step; on class numbers it is two
    y2, p2 = np.array([0, 1, 3, 3]), np.eye(4)[[0, 1, 3, 1]]
    ref = skm.cohen_kappa_score(y2, p2.argmax(1), labels=np.arange(4), weights="quadratic")
    assert get_metric("qwk")(y2, p2) == pytest.approx(ref)
    assert ref != pytest.approx(skm.cohen_kappa_score(y2, p2.argmax(1), weights="quadratic"))
    assert get_metric("qwk")(y, proba) > get_metric("qwk")(y2, p2)  # 3->2 is closer than 3->1


def test_logloss_and_rmsle_are_safe_at_the_edges():
    y = np.array([0, 1, 2])
    certain_and_wrong = np.eye(3, dtype=np.float32)[[1, 1, 2]]  # zeros where the truth is
    logloss = get_metric("logloss")
    value = logloss(y, certain_and_wrong)
    assert np.isfinite(value) and value == pytest.approx(-np.log(1e-15) / 3, rel=1e-3)
    t = logloss.torch(torch.from_numpy(y), torch.from_numpy(certain_and_wrong))
    assert float(t) == pytest.approx(value, rel=1e-5)
    rmsle = get_metric("rmsle")
    y, p = np.array([0.0, 1.0, 3.0]), np.array([-2.0, 1.0, 3.0])  # a negative prediction
    assert rmsle(y, p) == pytest.approx(0.0) and rmsle.target_transform == "log1p"
    assert float(rmsle.torch(torch.tensor(y), torch.tensor(p))) == pytest.approx(0.0, abs=1e-6)


def test_an_unknown_metric_name_is_a_config_error_listing_every_name():
    with pytest.raises(ConfigError) as err:
        get_metric("roc")
    message = str(err.value)
    assert message.startswith("Unknown metric 'roc'; choose one of: rmse, mse, mae, accuracy")
    assert "\n" not in message and all(name in message for name in METRICS)


@pytest.mark.parametrize(
    ("name", "task", "message"),
    [
        (
            "auc",
            REG,
            "metric 'auc' scores a binary or multi-class task; this competition is a regression. "
            "Metrics for it: rmse, mse, mae, rmsle",
        ),
        (
            "rmse",
            MULTI,
            "metric 'rmse' scores a regression task; this competition is a 5-class "
            "classification. Metrics for it: accuracy, balanced_accuracy",
        ),
        ("rmsle", BIN, "this competition is a binary classification"),
    ],
)
def test_a_metric_for_another_kind_of_task_is_refused_in_one_line(name, task, message):
    with pytest.raises(ConfigError) as err:
        check_task(get_metric(name), task)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    check_task(get_metric("logloss"), BIN)  # fine
    check_task(get_metric("f1"), MULTI)


def test_a_binary_only_metric_refuses_a_multi_class_task():
    metric = Metric(
        "gini",
        lambda y, p: 2 * skm.roc_auc_score(y, p[:, 1]) - 1,
        True,
        needs_proba=True,
        task_kind="binary",
    )
    check_task(metric, BIN)
    with pytest.raises(ConfigError, match="scores a binary task; this competition is a 5-class"):
        check_task(metric, MULTI)
    with pytest.raises(ValueError, match="task_kind must be one of"):
        Metric("x", metric.fn, True, task_kind="ranking")


def test_rmsle_refuses_negative_targets_in_one_line():
    check_target(get_metric("rmsle"), np.array([0.0, 2.0]), "train.csv")
    check_target(get_metric("rmse"), np.array([-5.0]), "train.csv")  # no bound
    with pytest.raises(DataError) as err:
        check_target(get_metric("rmsle"), np.array([1.0, -0.5, -3.0]), "train.csv")
    assert str(err.value).startswith(
        "metric 'rmsle' needs targets >= 0; train.csv has 2 below (smallest -3)"
    )
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("metric", "task", "monitor", "watched"),
    [
        ("auc", BIN, "auto", "logloss"),  # a metric of probabilities: the loss
        ("logloss", MULTI, "auto", "logloss"),
        ("accuracy", MULTI, "auto", "accuracy"),
        ("qwk", MULTI, "auto", "qwk"),
        ("rmse", REG, "auto", "rmse"),
        ("auc", BIN, "metric", "auc"),
        ("accuracy", MULTI, "loss", "logloss"),
        ("rmse", REG, "loss", "mse"),
        ("mae", REG, "metric", "mae"),
        ("rmsle", REG, "loss", "rmsle"),  # it trains on log1p(y): mse there is rmsle squared
    ],
)
def test_stop_metric_is_the_metric_or_the_loss(metric, task, monitor, watched):
    assert stop_metric(get_metric(metric), task, monitor).name == watched


def test_stop_metric_refuses_an_unknown_monitor():
    with pytest.raises(ConfigError, match="train.monitor must be one of: auto, metric, loss"):
        stop_metric(get_metric("rmse"), REG, "val_loss")


def test_tasks():
    reg, clf = Task("regression"), Task("classification", 3)
    assert reg.n_outputs == 1 and clf.n_outputs == 3
    out = torch.tensor([[0.0, 1.0, 0.0]])
    assert torch.allclose(clf.to_prediction(out).sum(-1), torch.ones(1))
    assert clf.to_labels(np.array([[0.1, 0.7, 0.2]])).tolist() == [1]
    with pytest.raises(ValueError, match="n_classes >= 2"):
        Task("classification", 1)


def test_a_registered_metric_is_found_by_name():
    maxerr = Metric("max_err", lambda y, p: np.max(np.abs(p - y)), greater_is_better=False)
    register_metric(maxerr)
    try:
        assert get_metric("MaxErr") is maxerr and "max_err" in METRICS
        assert maxerr(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])) == pytest.approx(1.0)
        assert "max_err" in list_metrics(REG) and "max_err" in list_metrics(BIN)  # any task
        with pytest.raises(ValueError, match="A metric named 'rmse' is already registered"):
            register_metric(Metric("rmse", maxerr.fn, False))
    finally:
        METRICS.unregister("max_err")
    with pytest.raises(ValueError, match="Unknown metric 'max_err'; choose one of: rmse, mse"):
        get_metric("max_err")
