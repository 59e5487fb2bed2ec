"""What an engine hands back to the cross-validator for each fold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.competition.preprocess import Preprocessor
from pipeline.engine.lit import LitModel


@dataclass
class TrainedFold:
    fold: int
    val_idx: np.ndarray
    module: LitModel  # the fold's model at its best epoch, on the CPU
    preprocessor: Preprocessor
    pred: np.ndarray  # predictions for val_idx (probabilities for classification)
    spread: np.ndarray | None  # MC-dropout spread, when predict.mc_samples > 0
    best_epoch: int  # 0-based
    epochs_run: int
    seconds: float  # the fold's whole time in the engine (a K-th of it, for stacked folds)
    fit_seconds: float  # of which inside Lightning's Trainer.fit: training and validation
