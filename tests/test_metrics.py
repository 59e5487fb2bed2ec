import numpy as np
import pytest
import torch

from pipeline.metrics import METRICS, Metric, Task, get_metric, register_metric


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


def test_tasks():
    reg, clf = Task("regression"), Task("classification", 3)
    assert reg.n_outputs == 1 and clf.n_outputs == 3
    out = torch.tensor([[0.0, 1.0, 0.0]])
    assert torch.allclose(clf.to_prediction(out).sum(-1), torch.ones(1))
    assert clf.to_labels(np.array([[0.1, 0.7, 0.2]])).tolist() == [1]
    with pytest.raises(ValueError, match="n_classes >= 2"):
        Task("classification", 1)


def test_a_registered_metric_is_found_by_name():
    medae = Metric("medae", lambda y, p: np.median(np.abs(p - y)), greater_is_better=False)
    register_metric(medae)
    try:
        assert get_metric("MedAE") is medae and "medae" in METRICS
        assert medae(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0])) == pytest.approx(0.5)
        with pytest.raises(ValueError, match="A metric named 'rmse' is already registered"):
            register_metric(Metric("rmse", medae.fn, False))
    finally:
        METRICS.unregister("medae")
    with pytest.raises(ValueError, match="Unknown metric 'medae'; choose one of: rmse, mse"):
        get_metric("medae")
