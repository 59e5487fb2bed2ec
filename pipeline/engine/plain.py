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

from pipeline.engine.batches import TensorBatches, to_tensor
from pipeline.engine.lit import LitModel
from pipeline.engine.lit_sequence import SequenceModule
from pipeline.engine.loggers import fit_loggers
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
    y_dtype = torch.long if task.is_classification else torch.float32
    fit_rows, val_rows = (_rows(pre, train, rows, y_dtype) for rows in (tr, va))
    if getattr(model, "window", None):  # a sequence model: batches are windows of rows
        batches, val_batches, runs = _window_batches(cfg, model, fit_rows, val_rows, tr, va, seed)
        module_cls, extra, more = SequenceModule, {"runs": runs}, {"n_val_rows": len(va)}
    else:
        batch = cfg.train.batch_size
        batches = TensorBatches(
            *fit_rows, batch_size=batch, shuffle=True, seed=seed, drop_last="single", shard=True
        )
        val_batches = TensorBatches(*val_rows, batch_size=max(batch, 4096))
        module_cls, extra, more = LitModel, {}, {}
    shift, scale = pre.shift_, pre.scale_
    module = module_cls(model, task, stop, cfg, len(batches), shift, scale, **more)
    checkpoint = ModelCheckpoint(
        dirpath=root / "checkpoints",
        filename=f"fold{k}",
        monitor=module.monitor,
        mode=stop.mode,
        save_top_k=1,
        save_weights_only=True,
        enable_version_counter=False,
    )
    stoppers = [checkpoint, FiniteGuard(module.monitor)]
    if cfg.train.patience > 0:
        t = cfg.train
        stoppers.append(EarlyStopping(module.monitor, t.min_delta, t.patience, mode=stop.mode))
    logger = fit_loggers(spec, root, f"fold{k}") if logs else False
    trainer = make_trainer(cfg, [*stoppers, *callbacks], logger, root, len(batches))
    fit_start = time.perf_counter()
    trainer.fit(module, batches, val_batches)
    fit_seconds = time.perf_counter() - fit_start
    best = checkpoint.best_model_score
    if not checkpoint.best_model_path or best is None or not torch.isfinite(best):
        raise diverged(k, stop)
    state = torch.load(checkpoint.best_model_path, map_location="cpu", weights_only=True)
    module.load_state_dict(state["state_dict"])
    module.cpu()
    x_va, _, off_va = val_rows
    mc = cfg.predict.mc_samples
    pred, spread = module.predict_array(x_va, off_va, mc_samples=mc, seed=seed, **extra)
    epochs, seconds = trainer.current_epoch, time.perf_counter() - start
    return TrainedFold(
        k, va, module, pre, pred, spread, state["epoch"], epochs, seconds, fit_seconds
    )


def _rows(pre, train, rows, y_dtype) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(inputs, targets, offsets) of `rows`, preprocessed by the fold's preprocessing."""
    X = train.X[rows]
    return (
        to_tensor(pre.transform(X)),
        to_tensor(train.y[rows]).to(y_dtype),
        to_tensor(pre.offset(X)),
    )


def _window_batches(cfg, model, fit_rows, val_rows, tr, va, seed):
    """Training and validation batches of windows cut inside each run of consecutive rows
    (train.batch_size counts rows: about that many rows a step), and the validation runs."""
    window, stride = model.window, model.stride
    per_batch = max(1, round(cfg.train.batch_size / window))
    batches = WindowBatches(*fit_rows, row_runs(tr), window, stride, per_batch, seed=seed)
    runs = row_runs(va)
    val = WindowBatches(*val_rows, runs, window, stride, max(1, 4096 // window), shuffle=False)
    return batches, val, runs
