"""The plain engine (train.engine=plain): one Lightning fit per fold, Lightning's own loops,
EarlyStopping and ModelCheckpoint. It trains every config, also those the fast engine cannot
(recurrent models, sched=plateau, several devices), and sequence models (model.name=seq),
whose batches are windows of consecutive rows cut inside the fold's training runs. Returns
one TrainedFold per call.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from pipeline.engine.batches import TensorBatches, to_tensor
from pipeline.engine.lit import LitModel
from pipeline.engine.lit_sequence import SequenceModule
from pipeline.engine.stopping import FiniteGuard
from pipeline.engine.trained import TrainedFold
from pipeline.engine.trainer import diverged, make_trainer
from pipeline.engine.windows import WindowBatches, row_runs


def fit_fold(
    spec, k: int, train, tr, va, pre, model, callbacks: list, root: Path, logs: bool
) -> TrainedFold:
    """Train fold k's `model` (built after seeding with seed + k) on rows `tr`, validate on
    `va` with early stopping on `spec.stop`, restore the best epoch, predict `va`."""
    cfg, task, stop = spec.cfg, spec.task, spec.stop
    start = time.perf_counter()
    seed = cfg.seed + k
    X_tr, X_va = train.X[tr], train.X[va]
    y_dtype = torch.long if task.is_classification else torch.float32
    x_tr, y_tr = to_tensor(pre.transform(X_tr)), to_tensor(train.y[tr]).to(y_dtype)
    x_va, y_va = to_tensor(pre.transform(X_va)), to_tensor(train.y[va]).to(y_dtype)
    off_tr, off_va = to_tensor(pre.offset(X_tr)), to_tensor(pre.offset(X_va))
    extra = {}
    if getattr(model, "window", None):  # a sequence model: batches are windows of rows
        window, stride = model.window, model.stride
        per_batch = max(1, round(cfg.train.batch_size / window))  # batch_size counts rows
        batches = WindowBatches(
            x_tr, y_tr, off_tr, row_runs(tr), window, stride, per_batch, seed=seed
        )
        extra["runs"] = row_runs(va)
        val_batches = WindowBatches(
            x_va,
            y_va,
            off_va,
            extra["runs"],
            window,
            stride,
            max(1, 4096 // window),
            shuffle=False,
        )
        module = SequenceModule(
            model,
            task,
            stop,
            cfg,
            steps_per_epoch=len(batches),
            target_shift=pre.shift_,
            target_scale=pre.scale_,
            n_val_rows=len(va),
        )
    else:
        batches = TensorBatches(
            x_tr,
            y_tr,
            off_tr,
            batch_size=cfg.train.batch_size,
            shuffle=True,
            seed=seed,
            drop_last="single",
            shard=True,
        )
        val_batches = TensorBatches(x_va, y_va, off_va, batch_size=max(cfg.train.batch_size, 4096))
        module = LitModel(
            model,
            task,
            stop,
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
        mode=stop.mode,
        save_top_k=1,
        save_weights_only=True,
        enable_version_counter=False,
    )
    stoppers = [checkpoint, FiniteGuard(monitor)]
    if cfg.train.patience > 0:
        stoppers.append(
            EarlyStopping(
                monitor=monitor,
                mode=stop.mode,
                patience=cfg.train.patience,
                min_delta=cfg.train.min_delta,
            )
        )
    logger = CSVLogger(root / "logs", name=f"fold{k}", version="") if logs else False
    trainer = make_trainer(cfg, [*stoppers, *callbacks], logger, root, len(batches))
    trainer.fit(module, batches, val_batches)
    best = checkpoint.best_model_score
    if not checkpoint.best_model_path or best is None or not torch.isfinite(best):
        raise diverged(k, stop)
    state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
    module.load_state_dict(state["state_dict"])
    module.cpu()
    pred, spread = module.predict_array(
        x_va, off_va, mc_samples=cfg.predict.mc_samples, seed=seed, **extra
    )
    return TrainedFold(
        k,
        va,
        module,
        pre,
        pred,
        spread,
        state["epoch"],
        trainer.current_epoch,
        time.perf_counter() - start,
    )
