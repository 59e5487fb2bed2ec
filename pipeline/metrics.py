"""Tasks (loss, outputs, predictions) and competition metrics.

Predictions live in the competition's own space: values for regression, class probabilities for
classification. Metrics take (y_true, predictions) in that space. METRICS is an open registry
(pipeline.registry): `register_metric(Metric("medae", fn, greater_is_better=False))` from a
competition plug-in makes `metric_name = "medae"` valid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from pipeline.registry import Registry


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool
    torch_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    # scores class probabilities (auc, logloss): submissions hold probabilities, and early
    # stopping watches the loss (train.monitor=auto)
    needs_proba: bool = False

    @property
    def mode(self) -> str:  # Lightning/Optuna spelling
        return "max" if self.greater_is_better else "min"

    @property
    def direction(self) -> str:
        return "maximize" if self.greater_is_better else "minimize"

    def __call__(self, y_true, y_pred) -> float:
        return float(self.fn(np.asarray(y_true), np.asarray(y_pred)))

    def torch(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """The same metric on tensors, computed where they live (no copy to the host)."""
        if self.torch_fn is None:
            return torch.tensor(self(y_true.cpu().numpy(), y_pred.float().cpu().numpy()))
        return self.torch_fn(y_true, y_pred.float())


def _labels(pred: np.ndarray) -> np.ndarray:
    return pred.argmax(axis=1) if pred.ndim == 2 else pred


def _torch_labels(pred: torch.Tensor) -> torch.Tensor:
    return pred.argmax(dim=1) if pred.dim() == 2 else pred


METRICS = Registry("metric")


def register_metric(metric: Metric, replace: bool = False) -> Metric:
    return METRICS.register(metric.name, metric, replace=replace)


# fmt: off
register_metric(Metric("rmse", lambda y, p: np.sqrt(np.mean((p - y) ** 2)), False,
                       lambda y, p: ((p - y) ** 2).mean().sqrt()))
register_metric(Metric("mse", lambda y, p: np.mean((p - y) ** 2), False,
                       lambda y, p: ((p - y) ** 2).mean()))
register_metric(Metric("mae", lambda y, p: np.mean(np.abs(p - y)), False,
                       lambda y, p: (p - y).abs().mean()))
register_metric(Metric("accuracy", lambda y, p: np.mean(_labels(p) == y), True,
                       lambda y, p: (_torch_labels(p) == y).float().mean()))
# fmt: on


def get_metric(name: str) -> Metric:
    return METRICS.lookup(name)


@dataclass(frozen=True)
class Task:
    kind: str  # "regression" | "classification"
    n_classes: int = 0

    def __post_init__(self):
        if self.kind not in ("regression", "classification"):
            raise ValueError(f"Unknown task {self.kind!r}; choose regression or classification.")
        if self.kind == "classification" and self.n_classes < 2:
            raise ValueError("A classification task needs n_classes >= 2.")

    @property
    def is_classification(self) -> bool:
        return self.kind == "classification"

    @property
    def is_binary(self) -> bool:
        return self.is_classification and self.n_classes == 2

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.is_classification else 1

    def loss(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        if self.is_classification:
            return F.cross_entropy(out, target)
        return F.mse_loss(out.squeeze(-1), target)

    def to_prediction(self, out: torch.Tensor) -> torch.Tensor:
        """Network output -> prediction space (probabilities or values)."""
        return out.softmax(-1) if self.is_classification else out.squeeze(-1)

    def to_labels(self, pred: np.ndarray) -> np.ndarray:
        """What a submission holds: class ids for classification, values otherwise."""
        return pred.argmax(axis=1) if self.is_classification else pred
