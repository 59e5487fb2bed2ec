"""The fast engine (train.engine=fast): all K fold models trained together in one Lightning fit.

- The rows live on the device once; every step gathers each fold's batch from its own
  training rows by index (one permutation per fold and epoch, fixed batch shapes).
- Each fold's preprocessing (fitted on that fold's training rows, as on the plain path) must be
  a column selection plus a per-column affine map (scalers); it is applied on the device.
- The K models are stacked (engine/stacked.py): one step costs about what one model's step does.
- Per-fold early stopping: each fold keeps its own best epoch (weights kept in memory) and its
  own patience; training ends when every fold has stopped.
After training the stack is split back into K ordinary LitModels, so OOF and test predictions,
MC dropout and checkpoints are exactly the plain path's.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import CSVLogger
from torch.nn import functional as F

from pipeline import optim
from pipeline.engine.batches import to_tensor
from pipeline.engine.lit import EpochMean, LitModel
from pipeline.engine.stacked import NotStackable, Stacked
from pipeline.engine.trainer import diverged, make_trainer
from pipeline.models import build_model
from pipeline.preprocess import Preprocessor

# --- preprocessing on the device -----------------------------------------------------------------


def affine_map(pre: Preprocessor, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(columns, scale, shift) with pre.transform(X) == X[:, columns] * scale + shift.

    Read off the fitted preprocessor by probing it with unit rows, then checked on real rows;
    a preprocessing that is not of this form is refused with the fallback named.
    """
    n_raw = X.shape[1]
    shift = pre.transform(np.zeros((1, n_raw), dtype=np.float32))[0].astype(np.float64)
    probe = pre.transform(np.eye(n_raw, dtype=np.float32)).astype(np.float64) - shift
    nonzero = probe != 0
    if (nonzero.sum(axis=0) > 1).any():
        raise NotStackable(
            "train.engine=fast needs preprocessing that selects columns and scales each one; "
            "this competition's preprocessing mixes columns. Use train.engine=plain."
        )
    columns = np.where(nonzero.any(axis=0), np.abs(probe).argmax(axis=0), 0)
    scale = probe[columns, np.arange(probe.shape[1])]
    sample = np.asarray(X[: min(len(X), 256)], dtype=np.float32)
    expected = pre.transform(sample)
    got = sample[:, columns] * scale + shift
    if not np.allclose(got, expected, rtol=1e-4, atol=1e-4):
        raise NotStackable(
            "train.engine=fast needs preprocessing that is a column selection and a per-column "
            "scaling; this one is not. Use train.engine=plain."
        )
    return columns.astype(np.int64), scale.astype(np.float32), shift.astype(np.float32)


@dataclass
class DeviceFolds:
    """Everything a stacked step needs, as tensors that can move to the device together."""

    X: torch.Tensor  # (N, raw features), float32
    y: torch.Tensor  # (N,), float32 values or int64 classes
    offset: torch.Tensor  # (N,), the raw offset column (zeros when none)
    columns: torch.Tensor  # (K, F) column indices per fold
    scale: torch.Tensor  # (K, F)
    shift: torch.Tensor  # (K, F)
    target_shift: torch.Tensor  # (K,)
    target_scale: torch.Tensor  # (K,)
    train_idx: list[torch.Tensor]
    val_idx: list[torch.Tensor]
    classification: bool = False
    # Per-fold inputs and targets computed once for all rows, when they fit the memory budget:
    # a step then only gathers rows. Otherwise each step transforms its rows.
    Xk: torch.Tensor | None = None  # (K, N, F)
    zk: torch.Tensor | None = None  # (K, N) model-space regression targets
    fold_index: torch.Tensor | None = None  # (K, 1) arange, for gathering per fold

    def to(self, device, rows: str = "device") -> DeviceFolds:
        """rows: "device" (float32), "bf16" (rows stored as bfloat16 on the device) or "host"
        (rows stay in host memory; each step's batch is gathered there and copied over)."""
        moved = {
            k: (v.to(device) if isinstance(v, torch.Tensor) else [t.to(device) for t in v])
            if isinstance(v, (torch.Tensor, list)) and k != "X" else v
            for k, v in self.__dict__.items()
        }  # fmt: skip
        if rows == "device":
            moved["X"] = self.X.to(device)
        elif rows == "bf16":
            moved["X"] = self.X.to(device=device, dtype=torch.bfloat16)
        return DeviceFolds(**moved)

    def place(
        self, device: torch.device, free_bytes: int | None = None
    ) -> tuple[DeviceFolds, str | None]:
        """Move to the device within its memory: the rows as float32 if they fit, else as
        bfloat16, else left in host memory. Returns the data and a note unless float32."""
        if device.type != "cuda":
            return self.to(device), None
        if free_bytes is None:
            free_bytes, _ = torch.cuda.mem_get_info(device)
        need = self.X.numel() * 4
        if need <= 0.6 * free_bytes:
            return self.to(device), None
        gib = f"{need / 2**30:.1f} GiB of rows, {free_bytes / 2**30:.1f} GiB free on the GPU"
        if need / 2 <= 0.6 * free_bytes:
            return self.to(device, "bf16"), f"rows kept as bfloat16 on the GPU ({gib})"
        note = f"rows kept in host memory, batches copied to the GPU each step ({gib}); slower"
        return self.to(device, "host"), note

    @property
    def K(self) -> int:
        return len(self.columns)

    def nbytes_per_fold_copy(self) -> int:
        return self.X.shape[0] * self.columns.shape[1] * 4

    def materialize(self, budget_bytes: int) -> None:
        """Precompute every fold's inputs (and regression targets) if they fit in the budget."""
        if self.K * self.nbytes_per_fold_copy() > budget_bytes or self.X.device != self.y.device:
            return
        self.Xk = torch.stack(
            [self.X[:, self.columns[k]].float() * self.scale[k] + self.shift[k]
             for k in range(self.K)]
        )  # fmt: skip
        if not self.classification:
            self.zk = (self.y - self.offset - self.target_shift[:, None]) / self.target_scale[
                :, None
            ]

    def inputs(self, idx: torch.Tensor) -> torch.Tensor:
        """(K, B) row indices -> (K, B, F) preprocessed inputs, fold k with fold k's map."""
        if self.Xk is not None:
            return self.Xk[self._folds(idx), idx]
        if self.X.device != idx.device:  # rows in host memory: gather there, copy the batch
            rows = self.X[idx.cpu()].to(idx.device, non_blocking=True)
        else:
            rows = self.X[idx]  # (K, B, raw)
        rows = rows.float()  # no-op for float32 rows; widens bfloat16 ones
        cols = self.columns.unsqueeze(1).expand(-1, idx.shape[1], -1)
        return torch.gather(rows, 2, cols) * self.scale.unsqueeze(1) + self.shift.unsqueeze(1)

    def targets(self, idx: torch.Tensor) -> torch.Tensor:
        """(K, B) model-space targets: classes, or (y - offset - shift_k) / scale_k."""
        if self.classification:
            return self.y[idx]
        if self.zk is not None:
            return self.zk[self._folds(idx), idx]
        off = self.offset[idx]
        return (self.y[idx] - off - self.target_shift[:, None]) / self.target_scale[:, None]

    def _folds(self, idx: torch.Tensor) -> torch.Tensor:
        if self.fold_index is None or self.fold_index.device != idx.device:
            self.fold_index = torch.arange(self.K, device=idx.device)[:, None]
        return self.fold_index


class StackedBatches:
    """Per epoch, each fold's training rows in a new random order, padded with random extra
    rows of the same fold to a whole number of full batches (all steps have one shape).

    One item per epoch: the (steps, K, batch) row indices of the whole epoch. The module runs
    the optimizer steps itself, so Lightning's per-batch machinery runs once per epoch."""

    def __init__(self, train_idx: list[torch.Tensor], batch_size: int, seed: int):
        self.train_idx = train_idx
        self.batch_size = batch_size
        longest = max(len(t) for t in train_idx)
        self.steps = max(1, -(-longest // batch_size))
        self.generator = torch.Generator().manual_seed(seed)

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        total = self.steps * self.batch_size
        order = []
        for idx in self.train_idx:
            n = len(idx)
            perm = torch.randperm(n, generator=self.generator)
            extra = torch.randint(n, (max(0, total - n),), generator=self.generator)
            order.append(idx[torch.cat([perm, extra])[:total]])
        order = torch.stack(order)  # (K, total)
        yield order.view(len(order), self.steps, self.batch_size).transpose(0, 1)


class _OncePerEpoch:
    """The validation 'loader': one placeholder batch; the module validates all folds at once."""

    def __len__(self) -> int:
        return 1

    def __iter__(self):
        yield torch.zeros(1)


EPOCH_GATHER = 16 << 20  # values: an epoch's inputs gathered in one go up to 64 MB of float32


def memory_budget(device: torch.device) -> int:
    """Bytes the precomputed per-fold inputs may take: 40% of free GPU memory, or a quarter
    of the machine's RAM (at most 4 GB) on the CPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(0.4 * free)
    try:
        ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        ram = 8 << 30
    return min(ram // 4, 4 << 30)


# --- the LightningModule -------------------------------------------------------------------------


class StackedLitModel(L.LightningModule):
    def __init__(self, stacked: Stacked, task, metric, cfg, data: DeviceFolds, steps: int):
        super().__init__()
        self.stacked = stacked
        self.task, self.metric, self.cfg = task, metric, cfg
        self.data = data
        self.steps_per_epoch = steps
        self.fold_scores: torch.Tensor | None = None
        self.placement_note: str | None = None
        self._val_chunks: list | None = None
        self._val_y: list[torch.Tensor] = []
        self.epoch_loss = EpochMean()
        self.automatic_optimization = False  # the epoch's steps run inside training_step
        self._sched_interval: str | None = None
        self._train_loss = self._forward_loss  # compiled in on_fit_start if asked
        self._graphs = False

    @property
    def monitor(self) -> str:
        return f"val/{self.metric.name}"

    def on_fit_start(self) -> None:
        self.data, self.placement_note = self.data.place(self.device)
        self.data.materialize(memory_budget(self.device))
        mode = self.cfg.train.compile
        self._graphs = mode == "reduce-overhead" and self.device.type == "cuda"
        if mode != "none":  # every step has the same shapes (K, B, features): one graph
            self._train_loss = torch.compile(self._forward_loss, mode=mode, dynamic=False)

    def _forward_loss(self, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The sum over folds of each fold's mean loss: fold k's gradient is the gradient of
        its own loss. Summed in one reduction (every fold's batch has B rows), as few ops as
        possible: at tabular sizes each op's overhead costs more than its arithmetic."""
        out = self.stacked(x)
        K, B = target.shape
        if self.task.is_classification:
            loss = F.cross_entropy(out.reshape(K * B, -1), target.reshape(-1), reduction="sum")
        else:
            loss = F.mse_loss(out.view(K, B), target, reduction="sum")
        return loss / B

    def training_step(self, epoch_idx, batch_idx):
        """One epoch: (steps, K, B) row indices, one optimizer step per (K, B) slice."""
        opt = self.optimizers()
        sched = self.lr_schedulers() if self._sched_interval == "step" else None
        l1 = self.cfg.optim.l1
        # Without a gradient scaler (32-bit, bf16) the plain optimizer steps: Lightning's
        # wrapper costs more than a small model's step. With one (16-mixed) Lightning steps,
        # unscaling before on_before_optimizer_step clips.
        raw = (
            opt.optimizer
            if getattr(self.trainer.precision_plugin, "scaler", None) is None
            else None
        )
        steps = len(epoch_idx)
        if self.data.Xk is not None and epoch_idx.numel() * self.data.Xk.shape[2] <= EPOCH_GATHER:
            # small data: gather the whole epoch's inputs and targets at once, then slice
            flat = epoch_idx.transpose(0, 1).reshape(self.data.K, -1)  # (K, steps * B)
            xs = self.data.inputs(flat).view(self.data.K, steps, -1, self.data.Xk.shape[2])
            zs = self.data.targets(flat).view(self.data.K, steps, -1)
            batches = ((xs[:, s], zs[:, s]) for s in range(steps))
        else:
            batches = ((self.data.inputs(i), self.data.targets(i)) for i in epoch_idx)
        for x, z in batches:
            if self._graphs:  # a new iteration: CUDA graph outputs of the last one are done
                torch.compiler.cudagraph_mark_step_begin()
            loss = self._train_loss(x, z)
            self.epoch_loss.add(loss)  # the data loss: logged as the mean over folds
            if l1 > 0:
                loss = loss + l1 * optim.l1_penalty(self.stacked)
            if raw is not None:
                raw.zero_grad(set_to_none=True)
                loss.backward()
                self.on_before_optimizer_step(raw)
                raw.step()
            else:
                opt.zero_grad(set_to_none=True)
                self.manual_backward(loss)  # scales the loss for 16-bit training
                opt.step()
            if self.cfg.train.max_norm > 0:
                self._max_norm()
            if sched is not None:
                sched.step()

    def on_before_optimizer_step(self, optimizer) -> None:
        """Clipping per fold: each fold's gradient is bounded on its own."""
        clip = self.cfg.train.grad_clip
        if not clip:
            return
        grads = [p.grad for p in self.stacked.parameters() if p.grad is not None]
        if self.cfg.train.grad_clip_algorithm == "value":
            for g in grads:
                g.clamp_(-clip, clip)
            return
        sq = sum(g.float().pow(2).flatten(1).sum(1) for g in grads)  # (K,)
        coef = (clip / (sq.sqrt() + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coef.view(-1, *([1] * (g.dim() - 1))).to(g.dtype))

    @torch.no_grad()
    def _max_norm(self) -> None:
        limit = self.cfg.train.max_norm
        for p in self.stacked.weight_parameters():
            p.copy_(torch.renorm(p.flatten(0, 1), 2, 0, limit).view_as(p))

    def on_train_epoch_end(self) -> None:
        if self._sched_interval == "epoch":
            self.lr_schedulers().step()

    @staticmethod
    def chunks(idx: list[torch.Tensor], chunk: int = 8192) -> list[tuple[torch.Tensor, list]]:
        """(K, width) index batches covering every fold's rows, with each fold's row count
        per batch; a fold with fewer rows repeats its first row (those outputs are dropped)."""
        out = []
        for start in range(0, max(len(i) for i in idx), chunk):
            parts = [i[start : start + chunk] for i in idx]
            width = max(len(p) for p in parts)
            batch = torch.stack([torch.cat([p, i[:1].expand(width - len(p))])
                                 for p, i in zip(parts, idx, strict=True)])  # fmt: skip
            out.append((batch, [len(p) for p in parts]))
        return out

    @torch.no_grad()
    def predict_folds(
        self, chunks: list[tuple[torch.Tensor, list]]
    ) -> tuple[list[torch.Tensor], list[bool]]:
        """Predictions of fold k's model for its rows in `chunks` (prediction space), and
        whether each fold's predictions are all finite (one check for all folds)."""
        preds = [[] for _ in chunks[0][1]]
        finite = None
        for batch, lengths in chunks:
            out = self.task.to_prediction(self.stacked(self.data.inputs(batch)).float())
            if not self.task.is_classification:
                out = (out * self.data.target_scale[:, None] + self.data.target_shift[:, None]
                       + self.data.offset[batch])  # fmt: skip
            # padding repeats a real row of the fold, so it is finite when the fold's rows are
            ok = torch.isfinite(out).flatten(1).all(1)
            finite = ok if finite is None else finite & ok
            for k, length in enumerate(lengths):
                preds[k].append(out[k, :length])
        return [torch.cat(p) if len(p) > 1 else p[0] for p in preds], finite.tolist()

    def validation_step(self, batch, batch_idx):
        if self._val_chunks is None:  # the same every epoch: built once
            self._val_chunks = self.chunks(self.data.val_idx)
            self._val_y = [self.data.y[idx] for idx in self.data.val_idx]
        preds, finite = self.predict_folds(self._val_chunks)
        nan = torch.tensor(float("nan"), device=self.device)
        self.fold_scores = torch.stack([
            self.metric.torch(y, pred).to(self.device) if ok else nan
            for pred, y, ok in zip(preds, self._val_y, finite, strict=True)
        ])  # fmt: skip
        mean = self.fold_scores.nanmean()
        # Only the monitored mean goes through self.log (callbacks read it); the rest of the
        # epoch's numbers go to the logger in one call: self.log costs more than a step here.
        self.log(self.monitor, mean, logger=False)
        train_loss = self.epoch_loss.pop() / self.data.K
        if self.logger is not None:
            row = {
                "epoch": self.current_epoch,
                "lr": self.trainer.optimizers[0].param_groups[0]["lr"],
                "train/loss": float(train_loss),
                "val/loss": self._val_loss(preds),
                self.monitor: float(mean),
                **{f"{self.monitor}/fold{k}": float(s) for k, s in enumerate(self.fold_scores)},
            }
            self.logger.log_metrics(row, self.global_step)

    def _val_loss(self, preds: list[torch.Tensor]) -> float:
        """The training loss on the validation rows, mean over folds (for the learning curves)."""
        losses = []
        for k, (pred, y) in enumerate(zip(preds, self._val_y, strict=True)):
            if self.task.is_classification:
                losses.append(F.nll_loss(pred.clamp_min(1e-12).log(), y))
            else:
                losses.append((((pred - y) / self.data.target_scale[k]) ** 2).mean())
        return float(torch.stack(losses).mean())

    def configure_optimizers(self):
        optimizer = optim.build_optimizer(self.stacked, self.cfg.optim, prefer_fused=True)
        scheduler = optim.build_scheduler(
            optimizer, self.cfg.sched, self.cfg.train.epochs, self.steps_per_epoch,
            self.monitor, self.metric.mode,
        )  # fmt: skip
        if scheduler is None:
            return optimizer
        self._sched_interval = scheduler["interval"]
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class FoldEarlyStopping(L.Callback):
    """Per-fold best epoch (weights kept in memory) and patience; stops when all folds have."""

    def __init__(self, K: int, patience: int, min_delta: float, mode: str, on_epoch_end=None):
        self.K, self.patience, self.min_delta = K, patience, min_delta
        self.sign = 1.0 if mode == "min" else -1.0
        self.best = [float("inf")] * K  # sign-adjusted, for restoring (strict improvement)
        self.best_es = [float("inf")] * K  # sign-adjusted, for patience (min_delta)
        self.best_epoch = [-1] * K
        self.wait = [0] * K
        self.stopped_at = [None] * K  # epochs run when the fold stopped
        self.best_state: dict[str, torch.Tensor] | None = None
        self.on_epoch_end = on_epoch_end

    def on_validation_end(self, trainer, module) -> None:
        if trainer.sanity_checking or module.fold_scores is None:
            return
        epoch = trainer.current_epoch
        state = module.stacked.state_dict()
        if self.best_state is None:
            self.best_state = {name: t.detach().clone() for name, t in state.items()}
        for k, value in enumerate(module.fold_scores.tolist()):
            if self.stopped_at[k] is not None or not np.isfinite(value):
                if self.stopped_at[k] is None and not np.isfinite(value):
                    self._tick(k, epoch)
                continue
            score = self.sign * value
            if score < self.best[k]:
                self.best[k], self.best_epoch[k] = score, epoch
                for name, t in state.items():
                    self.best_state[name][k].copy_(t[k])
            if score < self.best_es[k] - self.min_delta:
                self.best_es[k], self.wait[k] = score, 0
            else:
                self._tick(k, epoch)
        if self.on_epoch_end is not None:
            self.on_epoch_end(None, epoch, float(module.fold_scores.nanmean()))
        if all(s is not None for s in self.stopped_at):
            trainer.should_stop = True

    def _tick(self, k: int, epoch: int) -> None:
        self.wait[k] += 1
        if self.patience > 0 and self.wait[k] >= self.patience:
            self.stopped_at[k] = epoch + 1


# --- the engine ---------------------------------------------------------------------------------


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


def check_supported(cfg) -> None:
    """Refuse, before any work, config switches the fast engine cannot honour."""
    reasons = []
    if cfg.model.name == "gru":
        reasons.append("model.name=gru (a recurrent layer does not stack)")
    if cfg.sched.name == "plateau":
        reasons.append("sched.name=plateau (each fold would need its own learning rate)")
    if cfg.train.devices not in ("auto", 1) or cfg.train.strategy not in ("auto",):
        reasons.append("several devices (train.devices / train.strategy)")
    if reasons:
        raise NotStackable(
            f"train.engine=fast does not support {'; '.join(reasons)}: use train.engine=plain."
        )


def fit_stacked(cv, train, root: Path) -> None:
    """Fill the CrossValidator `cv` (splits_ already made) as the plain engine would."""
    cfg, competition = cv.cfg, cv.competition
    task, metric = competition.task, competition.metric
    check_supported(cfg)
    start = time.perf_counter()
    K = len(cv.splits_)
    pres, maps, models = [], [], []
    for k, (tr, _) in enumerate(cv.splits_):
        L.seed_everything(cfg.seed + k, verbose=False)  # the plain path's seed for fold k
        pre = competition.make_preprocessor(cfg, train)
        pre.fit(train.X[tr], train.y[tr])
        pres.append(pre)
        maps.append(affine_map(pre, train.X))
        models.append(build_model(cfg.model, pre.n_features_out_, task.n_outputs,
                                  competition.frame_dim))  # fmt: skip
    stacked = Stacked.from_models(models)
    y_dtype = torch.long if task.is_classification else torch.float32
    data = DeviceFolds(
        classification=task.is_classification,
        X=to_tensor(train.X, np.float32),
        y=to_tensor(train.y).to(y_dtype),
        offset=torch.from_numpy(pres[0].offset(train.X)),
        columns=torch.from_numpy(np.stack([m[0] for m in maps])),
        scale=torch.from_numpy(np.stack([m[1] for m in maps])),
        shift=torch.from_numpy(np.stack([m[2] for m in maps])),
        target_shift=torch.tensor([p.shift_ for p in pres], dtype=torch.float32),
        target_scale=torch.tensor([p.scale_ for p in pres], dtype=torch.float32),
        train_idx=[torch.from_numpy(np.asarray(tr, dtype=np.int64)) for tr, _ in cv.splits_],
        val_idx=[torch.from_numpy(np.asarray(va, dtype=np.int64)) for _, va in cv.splits_],
    )
    batches = StackedBatches(data.train_idx, cfg.train.batch_size, cfg.seed)
    module = StackedLitModel(stacked, task, metric, cfg, data, batches.steps)
    stopper = FoldEarlyStopping(K, cfg.train.patience, cfg.train.min_delta, metric.mode,
                                cv.on_epoch_end)  # fmt: skip
    callbacks = [stopper, cv._bar.stacked_callback(K, metric.mode)]
    if cv.fold_callbacks is not None:
        callbacks.extend(cv.fold_callbacks(None))
    logger = CSVLogger(root / "logs", name="folds", version="") if cv.run_dir else False
    trainer = make_trainer(cfg, callbacks, logger, root, 1, devices=1, strategy="auto",
                           enable_checkpointing=False, gradient_clip_val=None)  # fmt: skip
    L.seed_everything(cfg.seed, verbose=False)
    with no_memory_poisoning():
        trainer.fit(module, batches, _OncePerEpoch())
    never = [k for k in range(K) if stopper.best_epoch[k] < 0]
    if never:
        raise diverged(never[0], metric)
    cv.engine_note_ = module.placement_note
    stacked.load_state_dict(stopper.best_state)
    device = module.device
    seconds = (time.perf_counter() - start) / K
    for k, (model, pre, (_, va)) in enumerate(
        zip(stacked.unstack(), pres, cv.splits_, strict=True)
    ):
        lit = LitModel(model, task, metric, cfg, steps_per_epoch=batches.steps,
                       target_shift=pre.shift_, target_scale=pre.scale_).to(device)  # fmt: skip
        x_va = to_tensor(pre.transform(train.X[va]))
        off_va = to_tensor(pre.offset(train.X[va]))
        pred, spread = lit.predict_array(x_va, off_va, mc_samples=cfg.predict.mc_samples,
                                         seed=cfg.seed + k)  # fmt: skip
        lit.cpu()
        if cv.run_dir is not None:
            path = root / "checkpoints" / f"fold{k}.ckpt"
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"state_dict": lit.state_dict(), "epoch": stopper.best_epoch[k]}, path)
        cv.record_fold(k, va, lit, pre, pred, spread, stopper.best_epoch[k],
                       stopper.stopped_at[k] or trainer.current_epoch, seconds)  # fmt: skip
