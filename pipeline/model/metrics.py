"""Tasks (loss, outputs, predictions), competition metrics, and the quantity early stopping
watches.

Predictions live in the competition's own space: values for regression, class probabilities for
classification. Metrics take (y_true, predictions) in that space. METRICS is an open registry
(pipeline.model.registry) whose built-in entries, sklearn.metrics by name, live in
pipeline/model/metric_defs.py; `register_metric(Metric("mine", fn, greater_is_better=False))` from
a competition plug-in makes `metric_name = "mine"` valid.

`stop_metric(metric, task, monitor)` is the Metric the engines watch (early stopping,
checkpoints, plateau schedules, progress, pruning): with train.monitor=auto the task's loss for
metrics of probabilities (auc, logloss: smooth, and the argmax metrics' plateaus do not hide
progress), else the competition's metric itself. Fold scores are always the competition's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch.nn import functional as F

from pipeline.errors import ConfigError, DataError
from pipeline.model.registry import Registry

# the tasks a metric scores: "classification" is binary and multi-class alike
TASK_KINDS = ("any", "regression", "classification", "binary")
MONITORS = ("auto", "metric", "loss")  # train.monitor


@dataclass(frozen=True)
class Metric:
    name: str
    fn: Callable[[np.ndarray, np.ndarray], float]
    greater_is_better: bool
    torch_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None
    # scores class probabilities (auc, logloss): submissions hold probabilities, and early
    # stopping watches the loss (train.monitor=auto)
    needs_proba: bool = False
    task_kind: str = "any"  # one of TASK_KINDS; check_task refuses the others
    # the transform of y the network trains on (the preprocessor applies it and maps
    # predictions back): "log1p" for rmsle, whose loss is then the plain mse
    target_transform: str | None = None
    min_target: float | None = None  # smallest valid target (rmsle: 0); see check_target

    def __post_init__(self):
        if self.task_kind not in TASK_KINDS:
            raise ValueError(f"task_kind must be one of {TASK_KINDS}; got {self.task_kind!r}.")

    @property
    def mode(self) -> str:  # Lightning/Optuna spelling
        return "max" if self.greater_is_better else "min"

    @property
    def direction(self) -> str:
        return "maximize" if self.greater_is_better else "minimize"

    def applies_to(self, task: Task) -> bool:
        kind = self.task_kind
        if kind == "any":
            return True
        if kind == "regression":
            return not task.is_classification
        return task.is_binary if kind == "binary" else task.is_classification

    def __call__(self, y_true, y_pred) -> float:
        return float(self.fn(np.asarray(y_true), np.asarray(y_pred)))

    def torch(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> torch.Tensor:
        """The same metric on tensors, computed where they live (no copy to the host)."""
        if self.torch_fn is None:
            return torch.tensor(self(y_true.cpu().numpy(), y_pred.float().cpu().numpy()))
        return self.torch_fn(y_true, y_pred.float())


def labels_of(pred: np.ndarray) -> np.ndarray:
    """Class numbers from probabilities (n, K); 1-D predictions are labels already."""
    return pred.argmax(axis=1) if pred.ndim == 2 else pred


def torch_labels_of(pred: torch.Tensor) -> torch.Tensor:
    return pred.argmax(dim=1) if pred.dim() == 2 else pred


METRICS = Registry("metric", builtins="pipeline.model.metric_defs")


def register_metric(metric: Metric, replace: bool = False) -> Metric:
    return METRICS.register(metric.name, metric, replace=replace)


def get_metric(name: str) -> Metric:
    """The registered metric; an unknown name is a ConfigError listing every name."""
    try:
        return METRICS.lookup(name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def list_metrics(task: Task | None = None) -> list[str]:
    """The registered names, or those that score `task`."""
    return [n for n in METRICS.names() if task is None or METRICS.lookup(n).applies_to(task)]


_SCORES = {
    "regression": "a regression task",
    "classification": "a binary or multi-class task",
    "binary": "a binary task",
}


def check_task(metric: Metric, task: Task) -> None:
    """ConfigError (one line) when `metric` does not score this competition's kind of task."""
    if metric.applies_to(task):
        return
    raise ConfigError(
        f"metric {metric.name!r} scores {_SCORES[metric.task_kind]}; this competition is "
        f"{task.describe()}. Metrics for it: {', '.join(list_metrics(task))}."
    )


def check_target(metric: Metric, y: np.ndarray, source: str = "the training data") -> None:
    """DataError (one line) when the targets lie outside what `metric` is defined for (rmsle:
    log1p of a negative value); the loader calls it once the labels are read."""
    if metric.min_target is None or len(y) == 0:
        return
    y = np.asarray(y, dtype=np.float64)
    below = y < metric.min_target
    if below.any():
        raise DataError(
            f"metric {metric.name!r} needs targets >= {metric.min_target:g}; {source} has "
            f"{int(below.sum())} below (smallest {np.nanmin(y):g}). Choose another metric "
            "(rmse, mae) or shift the targets."
        )


def stop_metric(metric: Metric, task: Task, monitor: str = "auto") -> Metric:
    """The Metric the engines watch for `train.monitor`: `metric` (always the competition's),
    `loss` (the training loss's own quantity: logloss for classification, mae for an l1 loss,
    else mse, rmsle when the network trains on log1p(y)), or `auto` (the loss for metrics of
    probabilities, else the competition's metric)."""
    if monitor not in MONITORS:
        raise ConfigError(f"train.monitor must be one of: {', '.join(MONITORS)}; got {monitor!r}.")
    if monitor == "metric" or (monitor == "auto" and not metric.needs_proba):
        return metric
    if task.is_classification:
        return get_metric("logloss")
    if task.loss_name == "l1":
        return get_metric("mae")
    return get_metric("rmsle" if metric.target_transform == "log1p" else "mse")


# train.loss: what a regression network minimises (auto: fitted to the metric, see loss_for)
REGRESSION_LOSSES = ("mse", "l1", "huber")
LOSSES = ("auto", *REGRESSION_LOSSES, "cross_entropy")
# metrics whose best constant is the median, not the mean: an l1 loss learns what they score
MEDIAN_METRICS = ("mae", "medae")


@dataclass(frozen=True)
class Task:
    """The kind of task, and the training loss the engines minimise (`loss`, the one loss of
    both engines): cross-entropy (with optional label smoothing) for classification; for
    regression `loss_name` mse, l1 or huber (delta `huber_delta` on the model's target scale).
    `training_task` fits them to the metric and the config."""

    kind: str  # "regression" | "classification"
    n_classes: int = 0
    loss_name: str = "mse"  # regression: one of REGRESSION_LOSSES
    huber_delta: float = 1.0
    label_smoothing: float = 0.0  # classification: cross-entropy against smoothed targets

    def __post_init__(self):
        if self.kind not in ("regression", "classification"):
            raise ValueError(f"Unknown task {self.kind!r}; choose regression or classification.")
        if self.kind == "classification" and self.n_classes < 2:
            raise ValueError("A classification task needs n_classes >= 2.")
        if self.loss_name not in REGRESSION_LOSSES:
            raise ValueError(
                f"loss_name must be one of {REGRESSION_LOSSES}; got {self.loss_name!r}."
            )

    @property
    def is_classification(self) -> bool:
        return self.kind == "classification"

    @property
    def is_binary(self) -> bool:
        return self.is_classification and self.n_classes == 2

    @property
    def n_outputs(self) -> int:
        return self.n_classes if self.is_classification else 1

    def describe(self) -> str:
        if not self.is_classification:
            return "a regression"
        if self.is_binary:
            return "a binary classification"
        return f"a {self.n_classes}-class classification"

    def loss(
        self, out: torch.Tensor, target: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        """The training loss of network outputs against model-space targets; the one loss of
        both engines. Outputs have the targets' shape plus a last axis of the outputs (rows,
        stacked folds, windows alike), or plus a member axis and the outputs' axis (an
        ensemble of k members per model, pipeline/model/tabm.py): each member is trained on its
        own loss, and the members' losses are averaged."""
        members = out.dim() == target.dim() + 2
        if members:  # (..., k, outputs): every member against the same target
            target = target.unsqueeze(-1).expand(out.shape[:-1])
        if self.is_classification:
            flat = out.reshape(-1, out.shape[-1])
            kept = "none" if members else reduction
            loss = F.cross_entropy(
                flat, target.reshape(-1), reduction=kept, label_smoothing=self.label_smoothing
            )
            loss = loss.view(target.shape) if kept == "none" else loss
        else:
            kept = "none" if members else reduction
            pred = out.reshape(target.shape)
            if self.loss_name == "l1":
                loss = F.l1_loss(pred, target, reduction=kept)
            elif self.loss_name == "huber":
                loss = F.huber_loss(pred, target, reduction=kept, delta=self.huber_delta)
            else:
                loss = F.mse_loss(pred, target, reduction=kept)
        if not members:
            return loss
        loss = loss.mean(-1)  # the members' mean, per row
        return loss.mean() if reduction == "mean" else loss.sum() if reduction == "sum" else loss

    def to_prediction(self, out: torch.Tensor) -> torch.Tensor:
        """Network output -> prediction space (probabilities or values)."""
        return out.softmax(-1) if self.is_classification else out.squeeze(-1)

    def to_labels(self, pred: np.ndarray) -> np.ndarray:
        """What a submission holds: class ids for classification, values otherwise."""
        return pred.argmax(axis=1) if self.is_classification else pred


def loss_for(metric: Metric, task: Task, loss: str = "auto") -> str:
    """train.loss resolved for this metric: auto gives cross_entropy for classification, l1
    for metrics scored by absolute errors (mae, medae: their best prediction is the median,
    which l1 learns), else mse (rmse, r2, and rmsle on log1p(y)). ConfigError for a loss the
    task cannot train."""
    if loss not in LOSSES:
        raise ConfigError(f"train.loss must be one of: {', '.join(LOSSES)}; got {loss!r}.")
    if task.is_classification:
        if loss not in ("auto", "cross_entropy"):
            raise ConfigError(
                f"train.loss={loss} is a regression loss; this competition is "
                f"{task.describe()}: use train.loss=auto or cross_entropy."
            )
        return "cross_entropy"
    if loss == "cross_entropy":
        raise ConfigError(
            "train.loss=cross_entropy is a classification loss; this competition is a "
            f"regression: use auto, {', '.join(REGRESSION_LOSSES)}."
        )
    if loss != "auto":
        return loss
    return "l1" if metric.name in MEDIAN_METRICS else "mse"


LABEL_SMOOTHING_AUTO = 0.1  # RealMLP's value for classification error


def label_smoothing_for(metric: Metric, task: Task, smoothing) -> float:
    """train.label_smoothing resolved: auto gives 0.1 (RealMLP's) where the metric scores
    labels (accuracy, f1, ...), 0 where it scores probabilities (auc, logloss: smoothed targets
    would bias the probabilities it scores); a number > 0 for such a metric is refused."""
    if not task.is_classification:
        if smoothing not in ("auto", 0, 0.0):
            raise ConfigError(
                f"train.label_smoothing applies to classification; this competition is "
                f"{task.describe()}: leave it at auto or 0."
            )
        return 0.0
    if smoothing == "auto":
        return 0.0 if metric.needs_proba else LABEL_SMOOTHING_AUTO
    if smoothing > 0 and metric.needs_proba and metric.name == "logloss":
        raise ConfigError(
            f"train.label_smoothing={smoothing} pulls the probabilities that logloss scores "
            "towards uniform; use 0 (or auto) for this metric."
        )
    return float(smoothing)


def training_task(task: Task, metric: Metric, train_cfg) -> Task:
    """`task` with the training loss fitted to the metric and the train.* keys (loss,
    huber_delta, label_smoothing): what both engines train with."""
    name = loss_for(metric, task, getattr(train_cfg, "loss", "auto"))
    smoothing = label_smoothing_for(metric, task, getattr(train_cfg, "label_smoothing", 0.0))
    return replace(
        task,
        loss_name="mse" if task.is_classification else name,
        huber_delta=float(getattr(train_cfg, "huber_delta", 1.0)),
        label_smoothing=smoothing,
    )
