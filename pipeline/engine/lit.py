"""The LightningModule family: one base for the loss, L1 penalty, max-norm, monitored metric,
optimizer and schedule, and the per-fold module built on it (the stacked module of the fast
engine, engine/lit_stacked.py, is the other member).

Batches are (x, y, offset) with y on the competition's scale; for regression the module trains
on the target map of pipeline/competition/target.py and maps predictions back, so
`val/<metric>` is on the competition's scale, comparable across configs and folds. `metric` is
the quantity the module is watched on (engine/cv.py's FitSpec.stop: the competition's metric,
or the loss as a Metric, e.g. logloss, per train.monitor).
Log keys: train/loss, val/loss, val/<metric>, lr.
"""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import numpy as np
import torch
from torch import nn

from pipeline.competition.target import from_model, to_model
from pipeline.model import optim
from pipeline.model.metrics import Metric, Task


class EpochMean:
    """Mean of the step losses of an epoch, kept as a tensor: Lightning's per-step self.log
    costs more than a small model's whole step, and .item() would wait for the GPU. A running
    sum, not the step losses themselves: a step captured in a CUDA graph writes its loss into
    the same memory at every replay, so a kept reference would read the last step's."""

    def __init__(self):
        self.total: torch.Tensor | None = None
        self.steps = 0

    def add(self, loss: torch.Tensor) -> None:
        loss = loss.detach().float()
        self.total = loss.clone() if self.total is None else self.total + loss
        self.steps += 1

    def pop(self) -> torch.Tensor:
        mean = self.total / self.steps if self.steps else torch.tensor(0.0)
        self.total, self.steps = None, 0
        return mean


class LitBase(L.LightningModule):
    """What every training module shares. `net` is the module whose parameters train (one
    model, or K stacked ones); subclasses implement the steps."""

    def __init__(self, net: nn.Module, task: Task, metric: Metric, cfg, steps_per_epoch: int):
        super().__init__()
        self.task = task
        self.metric = metric
        self.cfg = cfg  # the full run config: optim, sched and train sections are read here
        self.steps_per_epoch = steps_per_epoch
        self.epoch_loss = EpochMean()
        self._net = [net]  # in a list: the subclass registers it under its own name
        self._sched_interval: str | None = None
        self.prefer_fused = False

    @property
    def monitor(self) -> str:
        return f"val/{self.metric.name}"

    def regularised(self, loss: torch.Tensor) -> torch.Tensor:
        """The data loss (recorded for the epoch's train/loss) plus the L1 penalty."""
        self.epoch_loss.add(loss)
        if self.cfg.optim.l1 > 0:
            loss = loss + self.cfg.optim.l1 * optim.l1_penalty(self._net[0])
        return loss

    def configure_optimizers(self):
        optimizer = optim.build_optimizer(self._net[0], self.cfg.optim, self.prefer_fused)
        scheduler = optim.build_scheduler(
            optimizer,
            self.cfg.sched,
            epochs=self.cfg.train.epochs,
            steps_per_epoch=self.steps_per_epoch,
            monitor=self.monitor,
            mode=self.metric.mode,
        )
        if scheduler is None:
            return optimizer
        self._sched_interval = scheduler["interval"]
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


class LitModel(LitBase):
    """One fold's model: automatic optimization, Lightning's loops, callbacks read `val/...`."""

    def __init__(
        self,
        model: nn.Module,
        task: Task,
        metric: Metric,
        cfg,
        steps_per_epoch: int,
        target_shift: float = 0.0,
        target_scale: float = 1.0,
    ):
        super().__init__(model, task, metric, cfg, steps_per_epoch)
        self.model = model
        self.target_shift = target_shift
        self.target_scale = target_scale
        self._val_outputs: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def model_target(self, y: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        if self.task.is_classification:
            return y
        return to_model(y, offset, self.target_shift, self.target_scale)

    def to_prediction(self, out: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        pred = self.task.to_prediction(out.float())
        if self.task.is_classification:
            return pred
        return from_model(pred, offset, self.target_shift, self.target_scale)

    def training_step(self, batch, batch_idx):
        x, y, offset = batch
        return self.regularised(self.task.loss(self.model(x), self.model_target(y, offset)))

    def optimizer_step(self, epoch, batch_idx, optimizer, optimizer_closure=None):
        super().optimizer_step(epoch, batch_idx, optimizer, optimizer_closure)
        if self.cfg.train.max_norm > 0:
            optim.apply_max_norm(self.model, self.cfg.train.max_norm)

    def on_train_epoch_start(self) -> None:
        lr = self.trainer.optimizers[0].param_groups[0]["lr"]
        self.log("lr", lr, on_epoch=True, sync_dist=True)

    def on_train_epoch_end(self) -> None:
        # under DDP each process saw its own share: the logged loss is the mean over processes
        self.log("train/loss", self.epoch_loss.pop(), sync_dist=True)

    def validation_step(self, batch, batch_idx):
        x, y, offset = batch
        out = self.model(x)
        loss = self.task.loss(out, self.model_target(y, offset))
        self._val_outputs.append((self.to_prediction(out, offset), y, loss * len(x)))

    def on_validation_epoch_end(self) -> None:
        if not self._val_outputs:
            return
        preds, ys, losses = zip(*self._val_outputs, strict=True)
        self._val_outputs.clear()
        pred = torch.cat(preds).detach().float().cpu().numpy()
        y = torch.cat(ys).cpu().numpy()
        self.log_validation(torch.stack(losses).sum() / len(y), y, pred)

    def log_validation(self, loss: torch.Tensor, y: np.ndarray, pred: np.ndarray) -> None:
        """val/loss and the watched metric of one validation epoch."""
        self.log("val/loss", loss)
        # an epoch whose outputs are not finite has no score (checkpointing then skips it)
        score = self.metric(y, pred) if np.isfinite(pred).all() else float("nan")
        self.log(self.monitor, score)

    @torch.no_grad()
    def predict_array(
        self,
        x: torch.Tensor,
        offset: torch.Tensor,
        batch_size: int = 8192,
        mc_samples: int = 0,
        seed: int = 0,
        runs: list[tuple[int, int]] | None = None,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Predictions for all rows, and with MC dropout the spread over the passes.

        mc_samples = 0: one pass in eval mode. N > 0: eval mode except dropout layers, N passes,
        mean returned; the spread is the std over passes (regression) or of the predicted class's
        probability (classification). `runs`: for models that read consecutive rows, the
        (start, stop) positions of each run of them (default: all rows are one run).
        """
        return self.passes(self.one_pass(x, offset, batch_size, runs), mc_samples, seed)

    def one_pass(self, x, offset, batch_size: int, runs) -> Callable[[torch.device], torch.Tensor]:
        """A function of the device that predicts every row once, in batches."""

        def run(device: torch.device) -> torch.Tensor:
            chunks = []
            for start in range(0, len(x), batch_size):
                xb = x[start : start + batch_size].to(device)
                ob = offset[start : start + batch_size].to(device)
                chunks.append(self.to_prediction(self.model(xb), ob).cpu())
            return torch.cat(chunks)

        return run

    def passes(self, one_pass, mc_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Run `one_pass(device)` once in eval mode, or mc_samples times with dropout on (seeded,
        the global generator restored after); the mean and, for MC dropout, the spread."""
        was_training = self.model.training
        self.model.eval()
        dropouts = [
            m for m in self.model.modules() if isinstance(m, nn.modules.dropout._DropoutNd)
        ]
        for m in dropouts:
            m.train(mc_samples > 0)
        device = next(self.model.parameters()).device
        passes = max(mc_samples, 1)
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(seed)
        try:
            runs = [one_pass(device) for _ in range(passes)]
        finally:
            torch.random.set_rng_state(generator_state)
            self.model.train(was_training)
        stacked = torch.stack(runs)
        mean = stacked.mean(0)
        if mc_samples <= 0:
            return mean.numpy(), None
        if self.task.is_classification:
            winner = mean.argmax(-1)
            spread = stacked.gather(2, winner.expand(passes, -1).unsqueeze(-1)).squeeze(-1).std(0)
        else:
            spread = stacked.std(0)
        return mean.numpy(), spread.numpy()
