"""The built-in metrics, registered by name (pipeline.model.metrics.METRICS imports this module on
first use).

Each is scikit-learn's function (rmse, mse, mae and accuracy keep their original numpy formulas,
which agree with sklearn's). Label metrics take the argmax of the probabilities; for a binary
task f1, precision and recall score class 1 (the positive class), for a multi-class task they
are macro averages over the classes present in y_true or the predictions (sklearn's default).
qwk weights disagreements by the squared distance between class numbers 0..K-1, auc is
one-vs-rest macro for K > 2, logloss clips probabilities at 1e-15 and renormalises rows.

torch_fn: the same number computed on the device, so the fast engine scores every fold of every
epoch without copying predictions to the host. The label metrics share one confusion matrix
(a one-hot matrix product: exact, and deterministic on CUDA where bincount is not); auc has none
(it is copied to the host).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import torch
from sklearn import metrics as skm

from pipeline.model.metrics import Metric, labels_of, register_metric, torch_labels_of

EPS = 1e-15  # logloss: the smallest probability a prediction counts with


def _quiet(fn):
    """sklearn warns about classes absent from a fold, or undefined scores set to 0: the
    defined value is what is wanted here, and a warning per epoch would fill the log."""

    @functools.wraps(fn)
    def wrapped(y, p):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(y, p)

    return wrapped


# --- numpy / sklearn -----------------------------------------------------------------------------
def _n_classes(y: np.ndarray, p: np.ndarray) -> int:
    return p.shape[1] if p.ndim == 2 else int(max(y.max(initial=0), p.max(initial=0))) + 1


def _binary(y: np.ndarray, p: np.ndarray) -> bool:
    return _n_classes(y, p) <= 2


def _proba(p: np.ndarray) -> np.ndarray:
    """(n, K) float64 probabilities, clipped at EPS and renormalised; 1-D: P(class 1)."""
    p = np.asarray(p, dtype=np.float64)
    if p.ndim == 1:
        p = np.column_stack([1 - p, p])
    p = np.clip(p, EPS, 1.0)
    return p / p.sum(axis=1, keepdims=True)


def _averaged(score):
    """A label score: class 1 for a binary task, the macro average for a multi-class one."""

    def fn(y, p):
        average = "binary" if _binary(y, p) else "macro"
        return score(y, labels_of(p), average=average, zero_division=0)

    return _quiet(fn)


def _f1(average: str):
    return _quiet(lambda y, p: skm.f1_score(y, labels_of(p), average=average, zero_division=0))


@_quiet
def _qwk(y, p):
    labels = np.arange(_n_classes(y, p))
    return skm.cohen_kappa_score(y, labels_of(p), labels=labels, weights="quadratic")


@_quiet
def _auc(y, p):
    p = _proba(p)
    if p.shape[1] == 2:
        return skm.roc_auc_score(y, p[:, 1])
    labels = np.arange(p.shape[1])
    return skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=labels)


def _logloss(y, p):
    p = _proba(p)
    return skm.log_loss(y, p, labels=np.arange(p.shape[1]))


def _rmsle(y, p):
    return skm.root_mean_squared_log_error(y, np.clip(p, 0, None))


# --- torch ---------------------------------------------------------------------------------------
def _confusion(y: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    """(K, K) float64 counts, rows: true class, columns: predicted class."""
    k = p.shape[1] if p.dim() == 2 else int(max(int(y.max()), int(p.max()))) + 1
    eye = torch.eye(k, dtype=torch.float64, device=y.device)
    return eye[y].T @ eye[torch_labels_of(p)]


def _div(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a / b, 0 where b == 0 (sklearn's zero_division=0)."""
    return torch.where(b > 0, a / torch.where(b > 0, b, 1), 0)


def _per_class(cm: torch.Tensor, score: str) -> torch.Tensor:
    tp, true, pred = cm.diag(), cm.sum(1), cm.sum(0)
    if score == "f1":
        return _div(2 * tp, true + pred)
    return _div(tp, pred if score == "precision" else true)


def _torch_averaged(score: str):
    def fn(y, p):
        cm = _confusion(y, p)
        per = _per_class(cm, score)
        if len(cm) <= 2:  # class 1 (no class 1 at all: nothing is right, sklearn's 0)
            return per[1].float() if len(cm) == 2 else per.new_zeros(()).float()
        present = (cm.sum(1) + cm.sum(0)) > 0
        return per[present].mean().float()

    return fn


def _torch_f1(average: str):
    def fn(y, p):
        cm = _confusion(y, p)
        per, true = _per_class(cm, "f1"), cm.sum(1)
        if average == "micro":  # one label per row: micro f1 is the accuracy
            return (cm.diag().sum() / cm.sum()).float()
        if average == "weighted":
            return (_div((per * true).sum(), true.sum())).float()
        return per[(true + cm.sum(0)) > 0].mean().float()

    return fn


def _torch_balanced_accuracy(y, p):
    cm = _confusion(y, p)
    true = cm.sum(1)
    return (cm.diag()[true > 0] / true[true > 0]).mean().float()


def _torch_mcc(y, p):
    cm = _confusion(y, p)
    t, q, n = cm.sum(1), cm.sum(0), cm.sum()
    cov_tq = cm.diag().sum() * n - t @ q
    denominator = (n * n - q @ q) * (n * n - t @ t)
    return _div(cov_tq, denominator.sqrt()).float()


def _torch_qwk(y, p):
    cm = _confusion(y, p)
    k = torch.arange(len(cm), dtype=torch.float64, device=cm.device)
    weights = (k[:, None] - k[None, :]) ** 2
    expected = torch.outer(cm.sum(1), cm.sum(0)) / cm.sum()
    return (1 - (weights * cm).sum() / (weights * expected).sum()).float()


def _torch_logloss(y, p):
    p = p.double()
    if p.dim() == 1:
        p = torch.stack([1 - p, p], dim=1)
    p = p.clamp(EPS, 1.0)
    p = p / p.sum(dim=1, keepdim=True)
    return -p.gather(1, y.long().view(-1, 1)).log().mean().float()


def _torch_rmsle(y, p):
    return ((p.clamp_min(0).log1p() - y.log1p()) ** 2).mean().sqrt()


def _torch_r2(y, p):
    y, p = y.double(), p.double()
    residual, total = ((y - p) ** 2).sum(), ((y - y.mean()) ** 2).sum()
    constant = torch.where(residual == 0, 1.0, 0.0).to(y)  # sklearn's force_finite
    score = 1 - residual / torch.where(total > 0, total, 1)
    return torch.where(total > 0, score, constant).float()


def _torch_medae(y, p):
    errors, _ = (p - y).abs().sort()
    n = len(errors)
    return (errors[(n - 1) // 2] + errors[n // 2]) / 2


def _torch_mape(y, p):
    y, p = y.double(), p.double()
    return ((p - y).abs() / y.abs().clamp_min(np.finfo(np.float64).eps)).mean().float()


# --- the registry --------------------------------------------------------------------------------
R, C = "regression", "classification"
# fmt: off
for metric in (
    Metric("rmse", lambda y, p: np.sqrt(np.mean((p - y) ** 2)), False,
           lambda y, p: ((p - y) ** 2).mean().sqrt(), task_kind=R),
    Metric("mse", lambda y, p: np.mean((p - y) ** 2), False,
           lambda y, p: ((p - y) ** 2).mean(), task_kind=R),
    Metric("mae", lambda y, p: np.mean(np.abs(p - y)), False,
           lambda y, p: (p - y).abs().mean(), task_kind=R),
    Metric("accuracy", lambda y, p: np.mean(labels_of(p) == y), True,
           lambda y, p: (torch_labels_of(p) == y).float().mean(), task_kind=C),
    Metric("rmsle", _rmsle, False, _torch_rmsle, task_kind=R, target_transform="log1p",
           min_target=0.0),
    Metric("r2", skm.r2_score, True, _torch_r2, task_kind=R),
    Metric("medae", skm.median_absolute_error, False, _torch_medae, task_kind=R),
    Metric("mape", skm.mean_absolute_percentage_error, False, _torch_mape, task_kind=R),
    Metric("balanced_accuracy", _quiet(lambda y, p: skm.balanced_accuracy_score(y, labels_of(p))),
           True, _torch_balanced_accuracy, task_kind=C),
    Metric("f1", _averaged(skm.f1_score), True, _torch_averaged("f1"), task_kind=C),
    Metric("f1_macro", _f1("macro"), True, _torch_f1("macro"), task_kind=C),
    Metric("f1_micro", _f1("micro"), True, _torch_f1("micro"), task_kind=C),
    Metric("f1_weighted", _f1("weighted"), True, _torch_f1("weighted"), task_kind=C),
    Metric("precision", _averaged(skm.precision_score), True, _torch_averaged("precision"),
           task_kind=C),
    Metric("recall", _averaged(skm.recall_score), True, _torch_averaged("recall"), task_kind=C),
    Metric("mcc", _quiet(lambda y, p: skm.matthews_corrcoef(y, labels_of(p))), True, _torch_mcc,
           task_kind=C),
    Metric("qwk", _qwk, True, _torch_qwk, task_kind=C),
    Metric("auc", _auc, True, needs_proba=True, task_kind=C),
    Metric("logloss", _logloss, False, _torch_logloss, needs_proba=True, task_kind=C),
):
    register_metric(metric)
# fmt: on
del metric
