"""The Lightning loggers of one fit (both engines): the CSV log every run keeps (the learning
curves read it) and the experiment logger `log.logger` chooses: TensorBoard, MLflow or
Weights & Biases, Lightning's own classes. The packages are optional extras; the config
refuses a logger whose package is missing before anything runs (pipeline.config.sections).

Where each writes: TensorBoard to `<run>/logs/tensorboard/<fit>/` (`tensorboard --logdir
runs/<competition>` shows every run); MLflow to its tracking URI (`log.uri`, else MLflow's
own: MLFLOW_TRACKING_URI or ./mlflow.db), experiment = `log.project` or the competition;
W&B to project `log.project` or the competition, one W&B run per fit grouped by the run
folder's name, offline (kept in `<run>/logs/wandb/` for `wandb sync`) unless logged in.
Every experiment logger also gets the resolved config as hyper-parameters."""

from __future__ import annotations

import netrc
import os
import re
from pathlib import Path

from lightning.pytorch.loggers import (
    CSVLogger,
    Logger,
    MLFlowLogger,
    TensorBoardLogger,
    WandbLogger,
)

from pipeline.config import flatten, to_dict


def fit_loggers(spec, root: Path, fit: str) -> list[Logger]:
    """The loggers of one Lightning fit named `fit` ("fold0", or "folds" for the stack) in the
    run folder `root`: CSV, then the experiment logger of `spec.cfg.log`, if any."""
    loggers: list[Logger] = [CSVLogger(root / "logs", name=fit, version="")]
    log = spec.cfg.log
    if log.logger == "none":
        return loggers
    run = run_name(root)
    project = log.project or spec.competition or "kaggle-pipeline"
    if log.logger == "tensorboard":
        logger = TensorBoardLogger(
            root / "logs" / "tensorboard", name=fit, version="", default_hp_metric=False
        )
    elif log.logger == "mlflow":
        import mlflow

        logger = MLFlowLogger(
            experiment_name=project,
            run_name=f"{run} {fit}",
            tracking_uri=log.uri or mlflow.get_tracking_uri(),
            tags={"run": run, "fit": fit, "run_dir": str(root)},
        )
    else:
        os.environ.setdefault("WANDB_SILENT", "true")  # ~20 lines a fold would bury the summary
        logger = FinishingWandbLogger(
            project=project,
            name=f"{run} {fit}",
            group=run,
            job_type=fit,
            save_dir=str(root / "logs"),
            offline=wandb_offline(log.wandb_mode),
        )
    logger.log_hyperparams(flatten(to_dict(spec.cfg)))
    loggers.append(logger)
    return loggers


def run_name(root: Path) -> str:
    """The run folder's name, also while it is written as `.<name>.partial-<pid>`."""
    match = re.fullmatch(r"\.(.+)\.partial-\d+", root.name)
    return match[1] if match else root.name


def wandb_offline(mode: str) -> bool:
    """auto: offline unless this machine is logged in to W&B (WANDB_API_KEY, or `wandb login`'s
    entry in ~/.netrc) or WANDB_MODE says what to do: a run must never wait at a prompt."""
    if mode != "auto":
        return mode == "offline"
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_MODE"):
        return False
    try:
        return netrc.netrc().authenticators("api.wandb.ai") is None
    except (OSError, netrc.NetrcParseError):
        return True


class FinishingWandbLogger(WandbLogger):
    """Lightning's WandbLogger that ends its W&B run when its fit ends: the next fold's logger
    would otherwise reuse the open run (wandb.run) and mix the folds' steps."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        # Lightning passes anonymous=None, which W&B warns about on every run
        self._wandb_init.pop("anonymous", None)

    def finalize(self, status: str) -> None:
        super().finalize(status)
        if self._experiment is not None:
            self._experiment.finish(exit_code=0 if status == "success" else 1)
