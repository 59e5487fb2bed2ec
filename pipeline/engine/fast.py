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

from pipeline.engine.batches import OncePerEpoch, StackedBatches, to_tensor
from pipeline.engine.choice import EngineChoice, as_tensors
from pipeline.engine.device import DeviceFolds
from pipeline.engine.lit import LitModel
from pipeline.engine.lit_stacked import StackedLitModel
from pipeline.engine.loggers import fit_loggers
from pipeline.engine.stopping import FoldEarlyStopping
from pipeline.engine.trained import TrainedFold
from pipeline.engine.trainer import diverged, make_trainer


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
    )


def fit_stacked(
    spec, train, splits, pres, choice: EngineChoice, callbacks: list, root: Path, logs: bool
) -> tuple[list[TrainedFold], str | None]:
    """Train the K stacked models; the fold results and a note on where the rows were kept
    (None: on the device as float32). `spec` carries cfg, task and `stop`, the quantity each
    fold's early stopping watches (engine/cv.py)."""
    cfg, task, stop = spec.cfg, spec.task, spec.stop
    start = time.perf_counter()
    K = len(splits)
    stacked = choice.stacked
    data = device_folds(task, train, splits, pres, choice)
    batches = StackedBatches(data.train_idx, cfg.train.batch_size, cfg.seed)
    module = StackedLitModel(stacked, task, stop, cfg, data, batches.steps)
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
    with no_memory_poisoning():
        trainer.fit(module, batches, OncePerEpoch())
    never = [k for k in range(K) if stopper.best_epoch[k] < 0]
    if never:
        raise diverged(never[0], stop)
    stacked.load_state_dict(stopper.best_state)
    device = module.device
    seconds = (time.perf_counter() - start) / K
    results = []
    for k, (model, pre, (_, va)) in enumerate(zip(stacked.unstack(), pres, splits, strict=True)):
        lit = LitModel(
            model,
            task,
            stop,
            cfg,
            steps_per_epoch=batches.steps,
            target_shift=pre.shift_,
            target_scale=pre.scale_,
        ).to(device)
        x_va = to_tensor(pre.transform(train.X[va]))
        off_va = to_tensor(pre.offset(train.X[va]))
        pred, spread = lit.predict_array(
            x_va, off_va, mc_samples=cfg.predict.mc_samples, seed=cfg.seed + k
        )
        lit.cpu()
        if logs:
            path = root / "checkpoints" / f"fold{k}.ckpt"
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"state_dict": lit.state_dict(), "epoch": stopper.best_epoch[k]}, path)
        epochs = stopper.stopped_at[k] or trainer.current_epoch
        results.append(
            TrainedFold(k, va, lit, pre, pred, spread, stopper.best_epoch[k], epochs, seconds)
        )
    return results, module.placement_note
