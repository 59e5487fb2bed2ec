"""The fast engine (train.engine=fast): all K fold models trained together in one Lightning fit.

- The rows live on the device once; every step gathers each fold's batch from its own
  training rows by index (one permutation per fold and epoch, fixed batch shapes).
- Each fold's preprocessing (fitted on that fold's training rows, as on the plain engine) is
  either applied on the device as the affine map read from its fitted parameters, or applied
  on the host once per fold (engine/choice.py decides, engine/device.py holds the rows).
- The K models are stacked (pipeline/model/stacking.py): one step costs about what one
  model's does.
- Per-fold early stopping with Lightning's rule (engine/stopping.py); training ends when every
  fold has stopped.
After training the stack is split back into K ordinary LitModels, so OOF and test predictions,
MC dropout and checkpoints are exactly the plain engine's. Returns one TrainedFold per fold.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from pipeline.competition.target import from_model
from pipeline.engine.batches import (
    OncePerEpoch,
    StackedBatches,
    StackedWindowBatches,
    to_tensor,
)
from pipeline.engine.choice import EngineChoice, as_tensors
from pipeline.engine.device import DeviceFolds, keeps_every_column, map_rows
from pipeline.engine.lit import LitModel
from pipeline.engine.lit_sequence import SequenceModule
from pipeline.engine.lit_stacked import StackedLitModel, ValWindows
from pipeline.engine.loggers import fit_loggers
from pipeline.engine.stopping import FoldEarlyStopping
from pipeline.engine.trained import TrainedFold
from pipeline.engine.trainer import diverged, make_trainer
from pipeline.engine.windows import average_windows, cut_windows, row_runs


@contextlib.contextmanager
def no_memory_poisoning():
    """With train.deterministic (Lightning's torch.use_deterministic_algorithms), PyTorch also
    fills every new tensor with NaN by default, a debugging aid that changes no result of code
    that writes before it reads. At tabular sizes those fills cost ~5% of the run; results
    stay bit-identical without them (tested), so they are off while the stack trains."""
    flags = torch.utils.deterministic
    before = flags.fill_uninitialized_memory
    flags.fill_uninitialized_memory = False
    try:
        yield
    finally:
        flags.fill_uninitialized_memory = before


def device_folds(task, train, splits, pres, choice: EngineChoice) -> DeviceFolds:
    """The rows of all folds with each fold's preprocessing, as the engine choice applies it."""
    if choice.maps is not None:
        X, Xk = to_tensor(train.X, np.float32), None
        columns, center, mult = as_tensors(choice.maps)
    else:  # any preprocessing: run on the host once per fold
        X, columns, center, mult = None, None, None, None
        Xk = torch.stack([to_tensor(p.transform(train.X)) for p in pres])
    return DeviceFolds(
        classification=task.is_classification,
        X=X,
        y=to_tensor(train.y).to(torch.long if task.is_classification else torch.float32),
        offset=torch.from_numpy(pres[0].offset(train.X)),
        columns=columns,
        center=center,
        mult=mult,
        target_shift=torch.tensor([p.shift_ for p in pres], dtype=torch.float32),
        target_scale=torch.tensor([p.scale_ for p in pres], dtype=torch.float32),
        train_idx=[torch.from_numpy(np.asarray(tr, dtype=np.int64)) for tr, _ in splits],
        val_idx=[torch.from_numpy(np.asarray(va, dtype=np.int64)) for _, va in splits],
        Xk=Xk,
        every_column=keeps_every_column(columns, train.X.shape[1]) if X is not None else None,
    )


def fit_stacked(
    spec, train, splits, pres, choice: EngineChoice, callbacks: list, root: Path, logs: bool
) -> tuple[list[TrainedFold], str | None, StackedPredictor]:
    """Train the K stacked models; the fold results, a note on where the rows were kept (None:
    on the device as float32) and the stacked predictor of new rows. `spec` carries cfg, task
    and `stop`, the quantity each fold's early stopping watches (engine/cv.py)."""
    cfg, task, stop = spec.cfg, spec.task, spec.stop
    start = time.perf_counter()
    K = len(splits)
    stacked = choice.stacked
    data = device_folds(task, train, splits, pres, choice)
    windows = None
    if getattr(stacked, "window", None):  # sequence models: windows of consecutive rows
        W, stride = stacked.window, stacked.stride
        per_batch = max(1, round(cfg.train.batch_size / W))  # batch_size counts rows
        tr_idx = [np.asarray(tr) for tr, _ in splits]
        batches = StackedWindowBatches(tr_idx, [row_runs(tr) for tr in tr_idx], W, stride,
                                       per_batch, cfg.seed)  # fmt: skip
        windows = ValWindows.cut([va for _, va in splits], W, stride, max(1, 8192 // W))
    else:
        batches = StackedBatches(data.train_idx, cfg.train.batch_size, cfg.seed)
    module = StackedLitModel(stacked, task, stop, cfg, data, batches.steps, windows)
    stopper = FoldEarlyStopping(K, cfg.train.patience, cfg.train.min_delta, stop.mode)
    logger = fit_loggers(spec, root, "folds") if logs else False
    trainer = make_trainer(
        cfg,
        [stopper, *callbacks],
        logger,
        root,
        1,
        devices=1,
        strategy="auto",
        enable_checkpointing=False,
        gradient_clip_val=None,
    )
    L.seed_everything(cfg.seed, verbose=False)
    fit_start = time.perf_counter()
    with no_memory_poisoning():
        trainer.fit(module, batches, OncePerEpoch())
    fit_seconds = (time.perf_counter() - fit_start) / K
    never = [k for k in range(K) if stopper.best_epoch[k] < 0]
    if never:
        raise diverged(never[0], stop)
    stacked.load_state_dict(stopper.best_state)
    stacked.eval()
    device = module.device
    seconds = (time.perf_counter() - start) / K
    mc = cfg.predict.mc_samples
    if mc == 0:  # every fold's validation rows at once, on the device
        val_preds = [p.cpu().numpy() for p in module.predict_validation()[0]]
    results = []
    for k, (model, pre, (_, va)) in enumerate(zip(stacked.unstack(), pres, splits, strict=True)):
        if windows is not None:
            lit = SequenceModule(model, task, stop, cfg, batches.steps, pre.shift_, pre.scale_,
                                 n_val_rows=len(va))  # fmt: skip
        else:
            lit = LitModel(model, task, stop, cfg, batches.steps, pre.shift_, pre.scale_)
        if mc == 0:
            pred, spread = val_preds[k], None
        else:  # MC dropout: each fold's passes, as the plain engine makes them
            x_va = to_tensor(pre.transform(train.X[va]))
            off_va = to_tensor(pre.offset(train.X[va]))
            extra = {"runs": row_runs(va)} if windows is not None else {}
            lit.to(device)
            pred, spread = lit.predict_array(x_va, off_va, mc_samples=mc, seed=cfg.seed + k,
                                             **extra)  # fmt: skip
            lit.cpu()
        if logs:
            path = root / "checkpoints" / f"fold{k}.ckpt"
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"state_dict": lit.state_dict(), "epoch": stopper.best_epoch[k]}, path)
        epochs = stopper.stopped_at[k] or trainer.current_epoch
        results.append(
            TrainedFold(
                k, va, lit, pre, pred, spread, stopper.best_epoch[k], epochs, seconds, fit_seconds
            )
        )
    predictor = StackedPredictor(stacked, task, pres, choice.maps, data.every_column, device)
    notes = [n for n in (module.placement_note, module.compile_note) if n]
    return results, "; ".join(notes) or None, predictor


class StackedPredictor:
    """The K fold models, stacked, predicting new rows on the training device: the rows go to
    the device once per chunk, each fold's preprocessing is its affine map applied there (or,
    for other preprocessing, run on the host), and the K predictions are averaged. What the
    fold models' own predict_array gives, averaged, in one pass instead of K."""

    def __init__(self, stacked, task, pres, maps, every_column, device: torch.device):
        self.stacked, self.task, self.pres, self.device = stacked, task, pres, device
        self.maps = None
        if maps is not None:
            columns, center, mult = as_tensors(maps)
            self.maps = (columns.to(device), center.to(device), mult.to(device), every_column)
        self.shift = torch.tensor([p.shift_ for p in pres], device=device)[:, None]
        self.scale = torch.tensor([p.scale_ for p in pres], device=device)[:, None]

    @torch.no_grad()
    def predict(self, X: np.ndarray, chunk: int = 1 << 16) -> np.ndarray:
        """Rows in order; for sequence models one run of consecutive rows, each row's output
        averaged over the overlapping windows that hold it (as SequenceModule predicts)."""
        window = getattr(self.stacked, "window", None)
        if window:
            return self._predict_windows(X, window, self.stacked.stride, max(1, chunk // window))
        out = []
        for start in range(0, len(X), chunk):
            out.append(self._mean(np.asarray(X[start : start + chunk], dtype=np.float32)).cpu())
        return torch.cat(out).numpy()

    def _mean(self, rows: np.ndarray, shape: tuple = ()) -> torch.Tensor:
        """The K folds' mean prediction of raw rows (viewed as `shape` + features)."""
        if self.maps is not None:
            x = map_rows(torch.from_numpy(rows).to(self.device), *self.maps)
        else:
            x = torch.stack([to_tensor(p.transform(rows)) for p in self.pres]).to(self.device)
        if shape:
            x = x.view(x.shape[0], *shape, x.shape[-1])
        pred = self.task.to_prediction(self.stacked(x).float())  # (K, ...) or (K, ..., C)
        if not self.task.is_classification:
            offset = torch.from_numpy(self.pres[0].offset(rows)).to(self.device).view(shape or -1)
            fold = (-1,) + (1,) * (pred.dim() - 1)
            pred = from_model(pred, offset, self.shift.view(fold), self.scale.view(fold))
        return pred.mean(dim=0)

    def _predict_windows(self, X, window: int, stride: int, per_chunk: int) -> np.ndarray:
        positions, mask = cut_windows([(0, len(X))], window, stride)
        windows, mask = torch.from_numpy(positions), torch.from_numpy(mask)
        outs = []
        for start in range(0, len(windows), per_chunk):
            w = positions[start : start + per_chunk]
            rows = np.asarray(X[w.reshape(-1)], dtype=np.float32)
            outs.append(self._mean(rows, w.shape).cpu())
        return average_windows(torch.cat(outs), windows, mask, len(X)).numpy()
