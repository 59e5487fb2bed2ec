"""K-fold cross-validation with per-fold preprocessing, early stopping and fold ensembling.

CrossValidator follows scikit-learn's estimator contract: __init__ stores, fit validates and
returns self, learned state ends in "_" (oof_, fold_scores_, ...), predict averages the fold
models. fit: the splits; each fold's preprocessor fitted on its training rows and its model
built (seeded per fold); the input checks and the engine choice (engine/choice.py), once, before
any training; then the engine trains and hands back one TrainedFold per fold, which fit collects.
"""

from __future__ import annotations

import copy
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np

from pipeline.competition.base import Competition, TestData, TrainData
from pipeline.competition.preprocess import (
    Preprocessor,
    fit_scaling_in_one_pass,
    fits_in_one_pass,
)
from pipeline.engine.batches import to_tensor
from pipeline.engine.choice import check_inputs, choose_engine
from pipeline.engine.fast import fit_stacked
from pipeline.engine.plain import fit_fold
from pipeline.engine.splits import make_splits
from pipeline.engine.stopping import EpochHook
from pipeline.engine.trained import TrainedFold
from pipeline.engine.trainer import quiet_lightning
from pipeline.model.metrics import Metric, check_task, stop_metric, training_task
from pipeline.model.models import build_model
from pipeline.progress import RunProgress


@dataclass
class FitSpec:
    """What an engine reads: the run config, the competition's task and metric, and `stop`,
    the quantity the engine watches (early stopping, checkpoints, plateau schedules, progress;
    metrics.stop_metric for train.monitor). The engine logs it as `val/<stop.name>`."""

    cfg: object
    task: object
    metric: Metric
    stop: Metric
    competition: str = ""  # its name: the experiment loggers' project (engine/loggers.py)


def fit_folds(competition: Competition, cfg, train: TrainData, splits) -> list[Preprocessor]:
    """Each fold's preprocessing, fitted on the fold's training rows only: fold k from fold
    k's seed, as both engines seed it; plain standard scaling of a large array for all folds
    in one pass over the rows (pipeline/competition/preprocess.py)."""
    pres = [competition.make_preprocessor(cfg, train) for _ in splits]
    if fits_in_one_pass(pres, train.X):
        fit_scaling_in_one_pass(pres, train.X, train.y, splits)
        return pres
    for k, (tr, _) in enumerate(splits):
        L.seed_everything(cfg.seed + k, verbose=False)
        pres[k].fit(train.X[tr], train.y[tr])
    return pres


class CrossValidator:
    """Train one model per fold; out-of-fold predictions, per-fold scores, fold-averaged predict.

    Parameters: the competition (task, metric, preprocessor factory), the resolved config, a
    run folder for checkpoints and logs (None: a temporary folder, no logs), whether to show
    progress, and hooks for tuning: `on_epoch_end(fold, epoch, value)` after every validation
    epoch with the watched quantity (`stop_`, from train.monitor; fold None when the folds train
    together: value is their mean), `on_fold_end(fold, score)` after each fold with its score
    on the competition's metric (both may raise to stop the run, e.g. optuna.TrialPruned), and
    `fold_callbacks(fold)` for extra Lightning callbacks.
    """

    def __init__(
        self,
        competition: Competition,
        cfg,
        run_dir: str | Path | None = None,
        progress: bool = True,
        on_epoch_end: Callable[[int | None, int, float], None] | None = None,
        on_fold_end: Callable[[int, float], None] | None = None,
        fold_callbacks: Callable[[int | None], list] | None = None,
    ):
        self.competition = competition
        self.cfg = cfg
        self.run_dir = run_dir
        self.progress = progress
        self.on_epoch_end = on_epoch_end
        self.on_fold_end = on_fold_end
        self.fold_callbacks = fold_callbacks

    def fit(
        self,
        train: TrainData,
        test: TestData | None = None,
        splits: list | None = None,
        preprocessors: list[Preprocessor] | None = None,
    ) -> CrossValidator:
        """`test`, when given, is checked with the training rows before any training.
        `splits` and `preprocessors` (each fold's, fitted by fit_folds) are what the input
        checks made (pipeline/run/inputs.py); made here when None."""
        quiet_lightning()
        cfg, competition = self.cfg, self.competition
        metric = competition.metric
        check_task(metric, competition.task)
        task = training_task(competition.task, metric, cfg.train)  # the loss fitted to it
        self.stop_ = stop = stop_metric(metric, task, cfg.train.monitor)
        if splits is None:
            splits = make_splits(cfg.cv, train, cfg.seed, task.is_classification)
        self.splits_ = splits
        if preprocessors is None:
            pres = fit_folds(competition, cfg, train, self.splits_)
        else:  # copies: padding below must not change the caller's
            pres = [copy.deepcopy(p) for p in preprocessors]
        width = max(p.n_features_out_ for p in pres)
        if any(p.n_features_out_ != width for p in pres):  # one-hot columns learned per fold
            for p in pres:
                p.pad_to(width)
        check_inputs(train, test, pres)
        # the engine choice stacks these to see whether they stack; train.engine=plain needs no
        # probe (the plain engine builds each fold's model again, right before it trains)
        plain = cfg.train.engine == "plain"
        models = [] if plain else [self._model(k, pre) for k, pre in enumerate(pres)]
        choice = choose_engine(cfg, pres, models, len(train.y))
        self.engine_, self.engine_note_ = choice.engine, choice.reason
        n = len(train.y)
        self.oof_ = np.full(
            (n, task.n_classes) if task.is_classification else (n,), np.nan, dtype=np.float32
        )
        self.oof_spread_ = np.full(n, np.nan, dtype=np.float32) if cfg.predict.mc_samples else None
        self.fold_of_row_ = np.full(n, -1, dtype=np.int64)
        self.fold_scores_, self.best_epochs_, self.epochs_run_ = [], [], []
        self.fold_seconds_: list[float] = []
        self.fit_seconds_ = 0.0  # inside Lightning's Trainer.fit: training and validation
        self.folds_: list[TrainedFold] = []  # each fold's model and preprocessing
        self.predictor_ = None  # the fast engine's stacked models, for predict
        spec = FitSpec(cfg, task, metric, stop, competition.name)
        with tempfile.TemporaryDirectory(prefix="cv-") as tmp:
            root = Path(self.run_dir) if self.run_dir is not None else Path(tmp)
            logs = self.run_dir is not None
            with RunProgress(
                len(self.splits_), cfg.train.epochs, f"val/{stop.name}", enabled=self.progress
            ) as bar:
                if choice.engine == "fast":
                    callbacks = [
                        bar.stacked_callback(len(pres), stop.mode),
                        *self._callbacks(None),
                    ]
                    results, note, self.predictor_ = fit_stacked(
                        spec, train, self.splits_, pres, choice, callbacks, root, logs
                    )
                    self.engine_note_ = note
                    for result in results:
                        self._collect(result, train.y, bar)
                else:
                    for k, (tr, va) in enumerate(self.splits_):
                        model = self._model(k, pres[k])  # seeded: training goes on from here
                        callbacks = [bar.callback(k, stop.mode), *self._callbacks(k)]
                        result = fit_fold(
                            spec, k, train, tr, va, pres[k], model, callbacks, root, logs
                        )
                        self._collect(result, train.y, bar)
        covered = self.fold_of_row_ >= 0
        self.oof_score_ = metric(train.y[covered], self.oof_[covered])
        return self

    def _model(self, k: int, pre: Preprocessor):
        """Fold k's model, initialised from fold k's seed (the same on both engines)."""
        L.seed_everything(self.cfg.seed + k, verbose=False)
        task = self.competition.task
        return build_model(
            self.cfg.model,
            pre.n_features_out_,
            task.n_outputs,
            self.competition.frame_dim,
            embed=pre.embed,
            numeric=pre.numeric_,
        )

    def _callbacks(self, fold: int | None) -> list:
        out = []
        if self.on_epoch_end is not None:
            out.append(EpochHook(fold, f"val/{self.stop_.name}", self.on_epoch_end))
        if self.fold_callbacks is not None:
            out.extend(self.fold_callbacks(fold))
        return out

    def _collect(self, r: TrainedFold, y: np.ndarray, bar: RunProgress) -> None:
        """Store fold r.fold's model and out-of-fold predictions; report; run on_fold_end."""
        metric = self.competition.metric
        self.oof_[r.val_idx] = r.pred
        if r.spread is not None:
            self.oof_spread_[r.val_idx] = r.spread
        self.fold_of_row_[r.val_idx] = r.fold
        self.folds_.append(r)
        score = metric(y[r.val_idx], r.pred)
        self.fold_scores_.append(score)
        self.best_epochs_.append(int(r.best_epoch))
        self.epochs_run_.append(int(r.epochs_run))
        self.fold_seconds_.append(r.seconds)
        self.fit_seconds_ += r.fit_seconds
        line = (
            f"fold {r.fold + 1}/{len(self.splits_)}: {metric.name} {score:.4f} "
            f"(best epoch {r.best_epoch + 1}, {r.seconds:.1f} s)"
        )
        bar.fold_done(r.fold, line)
        if self.on_fold_end is not None:
            self.on_fold_end(r.fold, score)

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Average of the fold models' predictions (probabilities for classification), and the
        MC-dropout spread averaged over folds when predict.mc_samples > 0."""
        # the stack predicts in one pass on a GPU (the rows cross to it once); on a CPU its
        # batched products and K-fold copies of each chunk took twice the fold models' time
        # (451,552 test rows of 429 columns: 6.5 s against 3.3 s, one thread)
        stacked = self.predictor_ is not None and self.predictor_.device.type != "cpu"
        if stacked and not self.cfg.predict.mc_samples:
            return self.predictor_.predict(X), None
        preds, spreads = [], []
        for k, fold in enumerate(self.folds_):
            pred, spread = fold.module.predict_array(
                to_tensor(fold.preprocessor.transform(X)),
                to_tensor(fold.preprocessor.offset(X)),
                mc_samples=self.cfg.predict.mc_samples,
                seed=self.cfg.seed + k,
            )
            preds.append(pred)
            if spread is not None:
                spreads.append(spread)
        mean = np.mean(preds, axis=0)
        return mean, (np.mean(spreads, axis=0) if spreads else None)
