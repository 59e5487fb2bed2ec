"""The one place that decides which engine trains a run, before any training.

`choose_engine` looks at the config, the K fitted preprocessors and the K freshly built
models, and returns the engine with the reason it cannot be the fast one:
- the fast engine needs models registered as stacking (pipeline/model/stacking.py) and a
  config it can honour;
- its inputs come either from the fitted preprocessing read as a per-column affine map of the
  raw columns (one copy of the rows on the device; scalers' mean_/scale_, selectors' support),
  or, for any other preprocessing (encoders, imputers, a user's transformer), from running
  each fold's preprocessing on the host once and moving the K transformed arrays, when they
  fit the memory budget.
Non-finite inputs are checked here too, on the whole train and test arrays: a data error that
names the file and column, whichever engine runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from pipeline.competition.preprocess import AffineMap, Preprocessor, check_finite
from pipeline.engine.device import memory_budget
from pipeline.model.models import stack_models
from pipeline.model.registry import MODELS
from pipeline.model.stacking import NotStackable, Stacked


@dataclass
class EngineChoice:
    engine: str  # "fast" or "plain"
    reason: str | None = None  # why not fast, when the choice fell back to plain
    maps: list[AffineMap] | None = None  # fast, affine inputs: each fold's map
    # fast, host inputs (maps is None): the preprocessing is applied on the host per fold
    stacked: Stacked | None = None  # fast: the K models, stacked


def check_inputs(train, test, preprocessors: list[Preprocessor]) -> None:
    """Non-finite raw values the preprocessing does not fill in: DataError, one line."""
    check_finite(train.X, preprocessors[0], train.source, train.feature_names)
    if test is not None:
        check_finite(test.X, preprocessors[0], test.source, train.feature_names)


def _unsupported(cfg, asked: str) -> list[str]:
    reasons = []
    if MODELS.info(cfg.model.name)["sequence"]:
        if asked == "auto" and run_device(cfg.train.accelerator).type != "cuda":
            reasons.append(
                f"model.name={cfg.model.name} on the CPU (its K stacked recurrent layers would "
                "do K times the arithmetic of K separate ones; on a GPU they stack)"
            )
        if cfg.train.compile not in ("none", "auto"):
            reasons.append("train.compile with a sequence model (recurrent layers)")
    if cfg.sched.name == "plateau":
        reasons.append("sched.name=plateau (each fold would need its own learning rate)")
    if cfg.train.devices not in ("auto", 1) or cfg.train.strategy not in ("auto",):
        reasons.append("several devices (train.devices / train.strategy)")
    return reasons


def host_bytes(preprocessors: list[Preprocessor], n_rows: int) -> int:
    """float32 bytes of the K transformed arrays (host inputs)."""
    return sum(p.n_features_out_ for p in preprocessors) * n_rows * 4


def run_device(accelerator: str) -> torch.device:
    """The device `train.accelerator` trains on, as Lightning resolves it: CUDA for auto, gpu
    or cuda when there is a GPU; otherwise the CPU (also for mps: memory shared with the host,
    the host's budget)."""
    gpu = accelerator in ("auto", "gpu", "cuda") and torch.cuda.is_available()
    return torch.device("cuda" if gpu else "cpu")


def choose_engine(
    cfg,
    preprocessors: list[Preprocessor],
    models: list[nn.Module],
    n_rows: int,
    budget: int | None = None,
) -> EngineChoice:
    """The engine for this config, fitted preprocessing and data; refuses train.engine=fast
    with the reason when it cannot run (train.engine=auto falls back to plain with it)."""
    asked = cfg.train.engine
    if asked == "plain":
        return EngineChoice("plain")
    reasons = _unsupported(cfg, asked)
    stacked = None
    try:
        stacked = stack_models(cfg.model.name, models)
    except NotStackable as exc:
        reasons.append(f"model.name={cfg.model.name} ({exc})")
    maps = [p.affine() for p in preprocessors]
    if not reasons and any(m is None for m in maps):
        maps = None
        need = host_bytes(preprocessors, n_rows)
        budget = memory_budget(run_device(cfg.train.accelerator)) if budget is None else budget
        if need > budget:
            reasons.append(
                "preprocessing that is not a column selection with per-column scaling, whose "
                f"{len(preprocessors)} transformed copies ({need / 2**30:.2f} GiB) exceed the "
                f"memory budget ({budget / 2**30:.2f} GiB)"
            )
    if not reasons:
        return EngineChoice("fast", maps=maps, stacked=stacked)
    reason = f"train.engine=fast does not support {'; '.join(reasons)}"
    if asked == "fast":
        raise NotStackable(f"{reason}: use train.engine=plain.")
    if cfg.train.compile not in ("none", "auto"):
        raise NotStackable(
            f"{reason}. train.compile needs the fast engine: set train.compile=none to train "
            "this config."
        )
    return EngineChoice("plain", reason=reason)


def as_tensors(maps: list[AffineMap]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(columns, center, mult) stacked over folds, as the device map wants them."""
    columns = torch.from_numpy(np.stack([m.columns for m in maps]))
    center = torch.from_numpy(np.stack([m.center for m in maps]).astype(np.float32))
    mult = torch.from_numpy(np.stack([m.mult for m in maps]).astype(np.float32))
    return columns, center, mult
