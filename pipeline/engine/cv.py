"""K-fold cross-validation with per-fold preprocessing, early stopping and fold ensembling.

CrossValidator follows scikit-learn's estimator contract: __init__ stores, fit validates and
returns self, learned state ends in "_" (oof_, fold_scores_, ...), predict averages the fold
models. Each fold: a fresh preprocessor fitted on its training rows, a fresh model, a Lightning
Trainer with EarlyStopping on the fold's validation metric and ModelCheckpoint to restore the
best epoch.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from pipeline.competition import Competition, TrainData
from pipeline.engine.batches import TensorBatches, to_tensor
from pipeline.engine.lit import LitModel
from pipeline.engine.trainer import diverged, make_trainer, quiet_lightning
from pipeline.models import build_model
from pipeline.preprocess import Preprocessor
from pipeline.progress import RunProgress
from pipeline.splits import make_splits

# --- the fold runner ----------------------------------------------------------------------------


@dataclass
class FoldModel:
    preprocessor: Preprocessor
    module: LitModel


class CrossValidator:
    """Train one model per fold; out-of-fold predictions, per-fold scores, fold-averaged predict.

    Parameters: the competition (task, metric, preprocessor factory), the resolved config, a
    run folder for checkpoints and logs (None: a temporary folder, no logs), whether to show
    progress, and hooks for tuning: `on_epoch_end(fold, epoch, value)` after every validation
    epoch, `on_fold_end(fold, score)` after each fold (both may raise to stop the run, e.g.
    optuna.TrialPruned), and `fold_callbacks(fold)` for extra Lightning callbacks.
    """

    def __init__(
        self,
        competition: Competition,
        cfg,
        run_dir: str | Path | None = None,
        progress: bool = True,
        on_epoch_end: Callable[[int, int, float], None] | None = None,
        on_fold_end: Callable[[int, float], None] | None = None,
        fold_callbacks: Callable[[int], list] | None = None,
    ):
        self.competition = competition
        self.cfg = cfg
        self.run_dir = run_dir
        self.progress = progress
        self.on_epoch_end = on_epoch_end
        self.on_fold_end = on_fold_end
        self.fold_callbacks = fold_callbacks

    def fit(self, train: TrainData) -> CrossValidator:
        quiet_lightning()
        task, metric = self.competition.task, self.competition.metric
        self.splits_ = make_splits(self.cfg.cv, train, self.cfg.seed, task.is_classification)
        n = len(train.y)
        shape = (n, task.n_classes) if task.is_classification else (n,)
        self.oof_ = np.full(shape, np.nan, dtype=np.float32)
        self.oof_spread_ = (
            np.full(n, np.nan, dtype=np.float32) if self.cfg.predict.mc_samples else None
        )
        self.fold_of_row_ = np.full(n, -1, dtype=np.int64)
        self.fold_scores_: list[float] = []
        self.best_epochs_: list[int] = []
        self.epochs_run_: list[int] = []
        self.fold_seconds_: list[float] = []
        self.folds_: list[FoldModel] = []
        self.engine_note_: str | None = None
        self._y = train.y
        with tempfile.TemporaryDirectory(prefix="cv-") as tmp:
            root = Path(self.run_dir) if self.run_dir is not None else Path(tmp)
            with RunProgress(
                len(self.splits_),
                self.cfg.train.epochs,
                f"val/{metric.name}",
                enabled=self.progress,
            ) as self._bar:
                self.engine_ = self.cfg.train.engine
                if self.engine_ in ("auto", "fast"):
                    from pipeline.engine.fast import fit_stacked
                    from pipeline.engine.stacked import NotStackable

                    try:
                        fit_stacked(self, train, root)
                        self.engine_ = "fast"
                    except NotStackable as exc:  # raised before any training
                        if self.engine_ == "fast":
                            raise
                        if self.cfg.train.compile != "none":
                            raise NotStackable(
                                f"{exc} train.compile needs the fast engine: set "
                                "train.compile=none to train this config."
                            ) from None
                        self.engine_, self.engine_note_ = "plain", str(exc)
                if self.engine_ == "plain":
                    for k, (tr, va) in enumerate(self.splits_):
                        self._fit_fold(k, train, tr, va, root)
        covered = self.fold_of_row_ >= 0
        self.oof_score_ = metric(train.y[covered], self.oof_[covered])
        return self

    def record_fold(self, k, va, module, pre, pred, spread, best_epoch, epochs_run, seconds):
        """Store fold k's model and out-of-fold predictions; report and run on_fold_end."""
        metric = self.competition.metric
        self.oof_[va] = pred
        if spread is not None:
            self.oof_spread_[va] = spread
        self.fold_of_row_[va] = k
        self.folds_.append(FoldModel(pre, module))
        score = metric(self._y[va], pred)
        self.fold_scores_.append(score)
        self.best_epochs_.append(int(best_epoch))
        self.epochs_run_.append(int(epochs_run))
        self.fold_seconds_.append(seconds)
        self._bar.fold_done(
            k,
            f"fold {k + 1}/{len(self.splits_)}: {metric.name} {score:.4f} "
            f"(best epoch {best_epoch + 1}, {seconds:.1f} s)",
        )
        if self.on_fold_end is not None:
            self.on_fold_end(k, score)
        return score

    def _fit_fold(self, k, train: TrainData, tr, va, root: Path) -> None:
        cfg, task, metric = self.cfg, self.competition.task, self.competition.metric
        start = time.perf_counter()
        seed = cfg.seed + k
        L.seed_everything(seed, verbose=False)
        pre = self.competition.make_preprocessor(cfg, train)
        X_tr, X_va = train.X[tr], train.X[va]
        pre.fit(X_tr, train.y[tr])
        model = build_model(
            cfg.model, pre.n_features_out_, task.n_outputs, self.competition.frame_dim
        )
        y_dtype = torch.long if task.is_classification else torch.float32
        batches = TensorBatches(
            to_tensor(pre.transform(X_tr)),
            to_tensor(train.y[tr]).to(y_dtype),
            to_tensor(pre.offset(X_tr)),
            batch_size=cfg.train.batch_size,
            shuffle=True,
            seed=seed,
            drop_last="single",
            shard=True,
        )
        x_va, off_va = to_tensor(pre.transform(X_va)), to_tensor(pre.offset(X_va))
        val_batches = TensorBatches(
            x_va,
            to_tensor(train.y[va]).to(y_dtype),
            off_va,
            batch_size=max(cfg.train.batch_size, 4096),
        )
        module = LitModel(
            model,
            task,
            metric,
            cfg,
            steps_per_epoch=len(batches),
            target_shift=pre.shift_,
            target_scale=pre.scale_,
        )
        monitor = module.monitor
        checkpoint = ModelCheckpoint(
            dirpath=root / "checkpoints",
            filename=f"fold{k}",
            monitor=monitor,
            mode=metric.mode,
            save_top_k=1,
            save_weights_only=True,
            enable_version_counter=False,
        )
        callbacks = [checkpoint, self._bar.callback(k, metric.mode), _FiniteGuard(monitor)]
        if self.on_epoch_end is not None:
            callbacks.append(_EpochHook(k, monitor, self.on_epoch_end))
        if cfg.train.patience > 0:
            callbacks.append(
                EarlyStopping(
                    monitor=monitor,
                    mode=metric.mode,
                    patience=cfg.train.patience,
                    min_delta=cfg.train.min_delta,
                )
            )
        if self.fold_callbacks is not None:
            callbacks.extend(self.fold_callbacks(k))
        logger = CSVLogger(root / "logs", name=f"fold{k}", version="") if self.run_dir else False
        trainer = make_trainer(cfg, callbacks, logger, root, len(batches))
        trainer.fit(module, batches, val_batches)
        best = checkpoint.best_model_score
        if not checkpoint.best_model_path or best is None or not torch.isfinite(best):
            raise diverged(k, metric)
        state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
        module.load_state_dict(state["state_dict"])
        module.cpu()
        pred, spread = module.predict_array(
            x_va, off_va, mc_samples=cfg.predict.mc_samples, seed=seed
        )
        self.record_fold(k, va, module, pre, pred, spread, state["epoch"], trainer.current_epoch,
                         time.perf_counter() - start)  # fmt: skip

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Average of the fold models' predictions (probabilities for classification), and the
        MC-dropout spread averaged over folds when predict.mc_samples > 0."""
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


class _EpochHook(L.Callback):
    def __init__(self, fold: int, monitor: str, fn: Callable[[int, int, float], None]):
        self.fold, self.monitor, self.fn = fold, monitor, fn

    def on_validation_end(self, trainer, pl_module) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and not trainer.sanity_checking:
            self.fn(self.fold, trainer.current_epoch, float(value))


class _FiniteGuard(L.Callback):
    """Stops a fold whose training loss or validation metric is no longer finite; the best
    finite epoch, if any, is restored as usual."""

    def __init__(self, monitor: str):
        self.monitor = monitor

    def on_validation_end(self, trainer, pl_module) -> None:
        for key in ("train/loss", self.monitor):
            value = trainer.callback_metrics.get(key)
            if value is not None and not torch.isfinite(torch.as_tensor(value)).all():
                trainer.should_stop = True
