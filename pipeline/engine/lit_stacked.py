"""The fast engine's LightningModule: K fold models stacked into one (model/stacking.py),
trained on rows that stay on the device (engine/device.py), one item per epoch.

It shares loss bookkeeping, the L1 penalty, the monitored key and the optimizer/schedule with
the per-fold module (engine/lit.py). What differs: manual optimization (one epoch's steps run
inside training_step, where Lightning's per-batch machinery would cost more than a step),
per-fold gradient clipping and max-norm, and a validation that scores every fold at once and
leaves the K scores in `fold_scores` for the per-fold early stopping (engine/stopping.py).
Sequence models train on windows of consecutive rows (`windows`: each fold's validation
windows, ValWindows): their loss is taken over the real rows of each window, and validation
averages each row's outputs over the windows that hold it, as the plain engine's
SequenceModule does.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.engine.device import EPOCH_GATHER, DeviceFolds, memory_budget
from pipeline.engine.lit import LitBase
from pipeline.engine.windows import cut_windows, row_runs
from pipeline.errors import ConfigError
from pipeline.model.stacking import Stacked

AUTO_COMPILE_STEPS = 20_000  # train.compile=auto compiles runs of at least this many steps


@dataclass
class ValWindows:
    """Each fold's validation rows as overlapping windows (stride), padded to one shape per
    chunk: positions (chunks, K, B, W) into the fold's validation rows, their row numbers and
    mask (False: padding, and whole padding windows of folds with fewer windows)."""

    local: torch.Tensor
    rows: torch.Tensor
    mask: torch.Tensor
    n_rows: list[int]

    @classmethod
    def cut(cls, val_idx: list[np.ndarray], window: int, stride: int, per_chunk: int):
        cuts = [cut_windows(row_runs(va), window, stride) for va in val_idx]
        chunks = max(1, -(-max(len(w) for w, _ in cuts) // per_chunk))
        total = chunks * per_chunk
        local, rows, mask = [], [], []
        for va, (w, m) in zip(val_idx, cuts, strict=True):
            pad = total - len(w)
            local.append(np.concatenate([w, np.repeat(w[:1], pad, axis=0)]))
            mask.append(np.concatenate([m, np.zeros((pad, window), dtype=bool)]))
            rows.append(np.asarray(va)[local[-1]])
        shape = (len(val_idx), chunks, per_chunk, window)

        def stacked(parts):
            return torch.from_numpy(np.stack(parts)).view(shape).transpose(0, 1).contiguous()

        return cls(stacked(local), stacked(rows), stacked(mask), [len(va) for va in val_idx])

    def to(self, device) -> ValWindows:
        return ValWindows(self.local.to(device), self.rows.to(device), self.mask.to(device),
                          self.n_rows)  # fmt: skip


class StackedLitModel(LitBase):
    """K fold models trained as one: manual optimization, one item per epoch."""

    def __init__(
        self, stacked: Stacked, task, metric, cfg, data: DeviceFolds, steps: int,
        windows: ValWindows | None = None,
    ):  # fmt: skip
        super().__init__(stacked, task, metric, cfg, steps)
        self.windows = windows
        self.stacked = stacked
        self.data = data
        self.prefer_fused = True
        self.fold_scores: torch.Tensor | None = None
        self.placement_note: str | None = None
        self._val_chunks: list | None = None
        self._val_y: list[torch.Tensor] = []
        self.automatic_optimization = False  # the epoch's steps run inside training_step
        self._train_loss = self._forward_loss  # compiled in on_fit_start if asked
        self._graphs = False
        self._compiled: str | None = None  # the torch.compile mode of _train_loss
        self._compile_tried = False
        self.compile_note: str | None = None

    def on_fit_start(self) -> None:
        self.data, self.placement_note = self.data.place(self.device)
        if self.windows is not None:
            self.windows = self.windows.to(self.device)
        self.data.materialize(memory_budget(self.device))
        mode = self.compile_mode()
        self._graphs = mode == "reduce-overhead" and self.device.type == "cuda"
        if mode != "none":  # every step has the same shapes (K, B, features): one graph
            self._train_loss = torch.compile(self._forward_loss, mode=mode, dynamic=False)
            self._compiled = mode

    def compile_mode(self) -> str:
        """train.compile, with auto resolved: CUDA graphs for row models on a CUDA device when
        the run has enough steps to repay tens of seconds of compiling, else none."""
        mode = self.cfg.train.compile
        if mode != "auto":
            return mode
        steps = self.steps_per_epoch * self.cfg.train.epochs
        cuda, rows = self.device.type == "cuda", self.windows is None
        return "reduce-overhead" if cuda and rows and steps >= AUTO_COMPILE_STEPS else "none"

    def _first_step(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The compiled step's first call compiles it. When train.compile=auto chose to
        compile and compiling fails (a PyTorch or driver without what it needs), the run goes
        on uncompiled and its engine note says so; an explicit train.compile fails in one
        line."""
        try:
            return self._train_loss(x, z)
        except Exception as exc:  # noqa: BLE001 (torch.compile raises many kinds)
            if self.cfg.train.compile != "auto":
                raise ConfigError(
                    f"train.compile={self.cfg.train.compile} failed to compile the training "
                    f"step ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}); use "
                    "train.compile=none."
                ) from None
            self.compile_note = (
                f"train.compile=auto: compiling failed ({type(exc).__name__}); trained uncompiled"
            )
            self._train_loss, self._graphs, self._compiled = self._forward_loss, False, None
            return self._forward_loss(x, z)

    def _forward_loss(
        self, x: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The sum over folds of each fold's mean loss: fold k's gradient is the gradient of
        its own loss. Summed in one reduction (every fold's batch has B rows), as few ops as
        possible: at tabular sizes each op's overhead costs more than its arithmetic. Windows
        (mask): each fold's mean over its real rows."""
        if mask is None:
            return self.task.loss(self.stacked(x), target, reduction="sum") / target.shape[1]
        each = self.task.loss(self.stacked(x), target, reduction="none") * mask
        rows = mask.flatten(1).sum(1).clamp(min=1)
        return (each.flatten(1).sum(1) / rows).sum()

    def training_step(self, epoch_idx, batch_idx):
        """One epoch: (steps, K, B) row indices, one optimizer step per (K, B) slice."""
        opt = self.optimizers()
        sched = self.lr_schedulers() if self._sched_interval == "step" else None
        # Without a gradient scaler (32-bit, bf16) the plain optimizer steps: Lightning's
        # wrapper costs more than a small model's step. With one (16-mixed) Lightning steps,
        # unscaling before on_before_optimizer_step clips.
        raw = (
            opt.optimizer
            if getattr(self.trainer.precision_plugin, "scaler", None) is None
            else None
        )
        if self.windows is not None:  # (steps, K, B, W) windows and their masks
            positions, masks = epoch_idx
            batches = (
                (self.data.inputs(p), self.data.targets(p), m)
                for p, m in zip(positions, masks, strict=True)
            )
        elif (
            self.data.Xk is not None and epoch_idx.numel() * self.data.Xk.shape[2] <= EPOCH_GATHER
        ):
            steps = len(epoch_idx)
            # small data: gather the whole epoch's inputs and targets at once, then slice
            flat = epoch_idx.transpose(0, 1).reshape(self.data.K, -1)  # (K, steps * B)
            xs = self.data.inputs(flat).view(self.data.K, steps, -1, self.data.Xk.shape[2])
            zs = self.data.targets(flat).view(self.data.K, steps, -1)
            batches = ((xs[:, s], zs[:, s], None) for s in range(steps))
        else:
            batches = ((self.data.inputs(i), self.data.targets(i), None) for i in epoch_idx)
        for x, z, mask in batches:
            if self._graphs:  # a new iteration: CUDA graph outputs of the last one are done
                torch.compiler.cudagraph_mark_step_begin()
            if mask is not None:
                loss = self._forward_loss(x, z, mask)
            elif self._compiled and not self._compile_tried:
                self._compile_tried = True
                loss = self._first_step(x, z)
            else:
                loss = self._train_loss(x, z)
            loss = self.regularised(loss)  # train/loss: the data loss, mean over folds
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
            batch = torch.stack(
                [
                    torch.cat([p, i[:1].expand(width - len(p))])
                    for p, i in zip(parts, idx, strict=True)
                ]
            )
            out.append((batch, [len(p) for p in parts]))
        return out

    @torch.no_grad()
    def predict_folds(
        self, chunks: list[tuple[torch.Tensor, list]], with_loss: bool = False
    ) -> tuple[list[torch.Tensor], list[bool], torch.Tensor | None]:
        """Predictions of fold k's model for its rows in `chunks` (prediction space), whether
        each fold's predictions are all finite (one check for all folds), and with_loss: each
        fold's training loss on those rows, (K,) means."""
        K = len(chunks[0][1])
        preds: list[list[torch.Tensor]] = [[] for _ in range(K)]
        finite, loss_sum = None, torch.zeros(K, device=self.device)
        for batch, lengths in chunks:
            raw = self.stacked(self.data.inputs(batch)).float()
            out = self.task.to_prediction(raw)
            if not self.task.is_classification:
                out = self.data.target_scale_of(out, batch)
            # padding repeats a real row of the fold, so it is finite when the fold's rows are
            ok = torch.isfinite(out).flatten(1).all(1)
            finite = ok if finite is None else finite & ok
            target = self.data.targets(batch) if with_loss else None
            for k, length in enumerate(lengths):
                preds[k].append(out[k, :length])
                if target is not None:
                    part = self.task.loss(raw[k, :length], target[k, :length], reduction="sum")
                    loss_sum[k] += part
        rows = torch.tensor([sum(c[1][k] for c in chunks) for k in range(K)], device=self.device)
        losses = loss_sum / rows if with_loss else None
        return [torch.cat(p) if len(p) > 1 else p[0] for p in preds], finite.tolist(), losses

    def predict_validation(self, with_loss: bool = False):
        """Every fold's predictions of its validation rows (predict_folds' three values)."""
        if self.windows is not None:
            return self.predict_windows(with_loss)
        if self._val_chunks is None:  # the same every epoch: built once
            self._val_chunks = self.chunks(self.data.val_idx)
        return self.predict_folds(self._val_chunks, with_loss)

    @torch.no_grad()
    def predict_windows(self, with_loss: bool = False):
        """predict_folds for sequence models: each fold's validation windows, each row's
        outputs averaged over the windows that hold it."""
        w = self.windows
        K, C = self.data.K, self.task.n_outputs if self.task.is_classification else 1
        total = [torch.zeros(n, C, device=self.device) for n in w.n_rows]
        count = [torch.zeros(n, device=self.device) for n in w.n_rows]
        loss_sum = torch.zeros(K, device=self.device)
        for local, rows, mask in zip(w.local, w.rows, w.mask, strict=True):
            raw = self.stacked(self.data.inputs(rows)).float()  # (K, B, W, out)
            out = self.task.to_prediction(raw)
            if not self.task.is_classification:
                out = self.data.target_scale_of(out, rows)
            if with_loss:
                each = self.task.loss(raw, self.data.targets(rows), reduction="none")
                loss_sum += (each * mask).flatten(1).sum(1)
            for k in range(K):
                keep = mask[k].reshape(-1)
                at = local[k].reshape(-1)[keep]
                total[k].index_add_(0, at, out[k].reshape(-1, C)[keep])
                count[k].index_add_(0, at, torch.ones_like(at, dtype=count[k].dtype))
        preds = [t / c.clamp(min=1)[:, None] for t, c in zip(total, count, strict=True)]
        if not self.task.is_classification:
            preds = [p.squeeze(-1) for p in preds]
        finite = torch.stack([torch.isfinite(p).all() for p in preds]).tolist()
        rows_real = w.mask.transpose(0, 1).flatten(1).sum(1).clamp(min=1)
        return preds, finite, (loss_sum / rows_real if with_loss else None)

    def validation_step(self, batch, batch_idx):
        if not self._val_y:
            self._val_y = [self.data.y[idx] for idx in self.data.val_idx]
        logs = self.logger is not None
        preds, finite, losses = self.predict_validation(with_loss=logs)
        nan = torch.tensor(float("nan"), device=self.device)
        self.fold_scores = torch.stack(
            [
                self.metric.torch(y, pred).to(self.device) if ok else nan
                for pred, y, ok in zip(preds, self._val_y, finite, strict=True)
            ]
        )
        mean = self.fold_scores.nanmean()
        # Only the monitored mean goes through self.log (callbacks read it); the rest of the
        # epoch's numbers go to the logger in one call: self.log costs more than a step here.
        self.log(self.monitor, mean, logger=False)
        train_loss = self.epoch_loss.pop() / self.data.K
        if logs:
            row = {
                "epoch": self.current_epoch,
                "lr": self.trainer.optimizers[0].param_groups[0]["lr"],
                "train/loss": float(train_loss),
                "val/loss": float(losses.mean()),  # the training loss, mean over folds
                self.monitor: float(mean),
                **{f"{self.monitor}/fold{k}": float(s) for k, s in enumerate(self.fold_scores)},
            }
            for logger in self.loggers:  # the CSV log and the experiment logger, if any
                logger.log_metrics(row, self.current_epoch)  # one row per epoch
