"""The common template: what most Lightning notebooks write for K-fold training, timed against
this project's fast engine by `python -m bench`.

Per fold, a TensorDataset and a DataLoader over the fold's rows, a LightningModule logging its
losses every step, a Trainer with EarlyStopping and ModelCheckpoint, one fold after another.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from pipeline.engine.cv import CrossValidator
from pipeline.model.models import build_model


class TemplateModule(L.LightningModule):
    """The notebook-style module: per-step logging, loss-based validation."""

    def __init__(self, net, task, lr: float):
        super().__init__()
        self.net, self.task, self.lr = net, task, lr

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.task.loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.log("val_loss", self.task.loss(self.net(x), y), prog_bar=True)

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.lr)


def template_cv(competition, cfg, train, splits, accelerator, early_stop, trimmed=False):
    """The common template's K-fold loop; returns (seconds, epochs run per fold, fold scores).

    As notebooks write it, the Trainer keeps Lightning's defaults: a progress bar (sent to
    /dev/null here), a logger writing to the run folder, the model summary and the sanity
    check. trimmed=True switches those four off: the template at its fastest."""
    task, metric = competition.task, competition.metric
    seconds, epochs, scores = 0.0, [], []
    for k, (tr, va) in enumerate(splits):
        start = time.perf_counter()
        L.seed_everything(cfg.seed + k, verbose=False)
        pre = competition.make_preprocessor(cfg, train)
        pre.fit(train.X[tr], train.y[tr])

        def dataset(rows, pre=pre):
            x = torch.tensor(pre.transform(train.X[rows]))
            if task.is_classification:
                return TensorDataset(x, torch.tensor(train.y[rows], dtype=torch.long))
            return TensorDataset(x, torch.tensor(pre.model_target(train.y[rows], train.X[rows])))

        net = build_model(
            cfg.model, pre.n_features_out_, task.n_outputs, competition.frame_dim, embed=pre.embed
        )
        module = TemplateModule(net, task, cfg.optim.lr)
        with tempfile.TemporaryDirectory() as tmp:
            callbacks = [ModelCheckpoint(dirpath=tmp, monitor="val_loss", save_weights_only=True)]
            if early_stop:
                callbacks.append(EarlyStopping("val_loss", patience=cfg.train.patience))
            extras = {}
            if trimmed:
                extras = dict(
                    logger=False,
                    enable_progress_bar=False,
                    enable_model_summary=False,
                    num_sanity_val_steps=0,
                )
            trainer = L.Trainer(
                max_epochs=cfg.train.epochs,
                accelerator=accelerator,
                devices=1,
                callbacks=callbacks,
                default_root_dir=tmp,
                **extras,
            )
            with (
                open(os.devnull, "w") as sink,
                contextlib.redirect_stderr(sink),
                contextlib.redirect_stdout(sink),
            ):
                trainer.fit(
                    module,
                    DataLoader(dataset(tr), batch_size=cfg.train.batch_size, shuffle=True),
                    DataLoader(dataset(va), batch_size=cfg.train.batch_size),
                )
            best = torch.load(callbacks[0].best_model_path, weights_only=True)["state_dict"]
            module.load_state_dict(best)
        module.eval().cpu()
        with torch.no_grad():
            out = task.to_prediction(module.net(torch.tensor(pre.transform(train.X[va]))))
        pred = out.numpy()
        if not task.is_classification:
            pred = pre.inverse_target(pred, train.X[va])
        scores.append(metric(train.y[va], pred))
        epochs.append(trainer.current_epoch)
        seconds += time.perf_counter() - start
    return seconds, epochs, scores


def project_cv(competition, cfg, train):
    start = time.perf_counter()
    cv = CrossValidator(competition, cfg, progress=False).fit(train)
    return time.perf_counter() - start, cv.epochs_run_, cv.fold_scores_
