"""The Lightning Trainer both engines use, and the messages they share."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.fabric.utilities.exceptions import MisconfigurationException

from pipeline.errors import ConfigError, TrainingDiverged


def quiet_lightning() -> None:
    """Lightning's start-up chatter and advice meant for DataLoader users hide our summary."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*smaller than the logging interval.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*is deprecated.*")
    warnings.filterwarnings("ignore", ".*isinstance.treespec, LeafSpec.*")
    # folds share one checkpoints/ folder, each with its own file name
    warnings.filterwarnings("ignore", ".*Checkpoint directory .* exists and is not empty.*")


def make_trainer(cfg, callbacks, logger, root: Path, steps_per_epoch: int, **overrides):
    """The Lightning Trainer both engines use; config mistakes become one-line errors. On a
    CUDA device float32 products use TensorFloat-32 where train.tf32 allows it."""
    if cfg.train.accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = cfg.train.tf32
        torch.backends.cudnn.allow_tf32 = cfg.train.tf32
    kwargs = dict(
        max_epochs=cfg.train.epochs,
        accelerator=cfg.train.accelerator,
        devices=cfg.train.devices,
        strategy=cfg.train.strategy,
        precision=cfg.train.precision,
        gradient_clip_val=cfg.train.grad_clip or None,
        gradient_clip_algorithm=cfg.train.grad_clip_algorithm,
        deterministic=cfg.train.deterministic,
        callbacks=callbacks,
        logger=logger,
        log_every_n_steps=max(1, steps_per_epoch),
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=root,
    )
    kwargs.update(overrides)
    try:
        return L.Trainer(**kwargs)
    except (MisconfigurationException, ValueError) as exc:
        raise ConfigError(f"train: {exc}") from None


def diverged(k: int, metric) -> TrainingDiverged:
    return TrainingDiverged(
        f"fold {k + 1}: the loss or validation {metric.name} was never finite; lower "
        "optim.lr, add train.grad_clip, or check the data for extreme values."
    )
