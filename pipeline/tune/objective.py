"""One Optuna trial = one K-fold run of the training flow, and the files it leaves.

Pruning and the steps a trial reports on: pipeline/tune/pruners.py.

A trial that cannot run (a config the checks refuse), diverges (no finite validation epoch) or
runs out of memory ends as PRUNED with the reason in its `reason` attribute, so the sampler learns
to avoid that region and the study goes on. Any other error marks the trial FAIL with its reason.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import os
import shutil
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from pipeline.competition.base import TestData, TrainData
from pipeline.config import Config
from pipeline.engine.cv import CrossValidator
from pipeline.ensemble.members import run_info
from pipeline.ensemble.references import reference_predictions
from pipeline.errors import ConfigError, TrainingDiverged
from pipeline.interrupts import Interrupted
from pipeline.io import write_json, write_npy
from pipeline.model.metrics import stop_metric, training_task
from pipeline.run.folder import alive
from pipeline.run.inputs import Inputs, check_buildable, resolve_config
from pipeline.tune.hooks import Reporter
from pipeline.tune.pruners import Pruning
from pipeline.tune.space import SearchSpace, to_override
from pipeline.tune.storage import WORKER_ID, Heartbeat, holds_slot

SURPLUS = "surplus"  # the reason of a trial created when the study was already full


class Surplus(Exception):
    """The study already holds its total of finished and running trials: not run."""


@dataclass
class TuneSetup:
    """What every trial of one worker shares."""

    inputs: Inputs  # competition, base config, data (loaded once)
    config_file: Path | None
    overrides: list[str]
    space: SearchSpace
    out_dir: Path
    n_trials: int
    stride: int
    pruning: Pruning
    heartbeat: float | None  # seconds between heartbeat stamps; None: the storage has its own
    top_k: int = 0  # keep the OOF and test predictions of the k best trials (0: none)
    reference: str | None = None  # tune this reference (cv.references name), not the network
    on_epoch: Callable[[int, int | None, int], None] | None = None  # (trial, fold, epoch)
    # The files' arrays before row_features, kept when the space searches features.* keys
    # (row features then depend on the trial); None: every trial uses inputs.train/test.
    raw: tuple[TrainData, TestData] | None = None


def inputs_for(setup: TuneSetup, cfg: Config) -> Inputs:
    """The checked inputs with this config, and its own row features when they can differ."""
    inputs = dataclasses.replace(setup.inputs, cfg=cfg)
    if setup.raw is not None:
        train, test = setup.raw
        row_features = inputs.competition.row_features
        inputs.train = dataclasses.replace(train, X=row_features(cfg, train.X))
        inputs.test = dataclasses.replace(test, X=row_features(cfg, test.X))
    return inputs


def trial_inputs(setup: TuneSetup, values: dict) -> Inputs:
    """The trial's config, through the same layers and checks as the command line, with its
    inputs."""
    overrides = [*setup.overrides, *(to_override(k, v) for k, v in values.items())]
    competition = setup.inputs.competition
    cfg = resolve_config(competition, setup.config_file, overrides)
    inputs = inputs_for(setup, cfg)
    inputs.splits, inputs.preprocessors = check_buildable(competition, cfg, inputs.train)
    return inputs


def trial_dir(out_dir: Path, number: int) -> Path:
    return out_dir / "trials" / f"{number:05d}"


def ranked(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Completed trials, best first."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(complete, key=lambda t: (sign * t.value, t.number))


class FittedReference:
    """A reference's fit on the folds, read by save_trial as a fitted CrossValidator is."""

    def __init__(self, ref, splits):
        self.ref, self.oof_, self.fold_scores_ = ref, ref.oof, ref.fold_scores
        self.fold_of_row_ = np.full(len(ref.oof), -1, dtype=np.int64)
        for k, (_, va) in enumerate(splits):
            self.fold_of_row_[va] = k

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, None]:
        """The fold-averaged test predictions (the reference predicted the test rows as it
        was fitted)."""
        if self.ref.test is None or len(self.ref.test) != len(X):
            raise ValueError("the reference predicted other test rows than these")
        return self.ref.test, None


def save_trial(setup: TuneSetup, inputs: Inputs, cv, number: int, value: float, values) -> None:
    """trials/<n>/: the OOF and test predictions, the fold of each row, and trial.json (what
    pipeline.ensemble.members reads to check the rows and folds). Written whole in a hidden
    folder beside it and renamed into place: a reader (pipeline.blend on a running study)
    sees a trial's files all or not at all."""
    train, test = inputs.train, inputs.test
    test_pred, _ = cv.predict(test.X)
    folder = trial_dir(setup.out_dir, number)
    work = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        write_npy(work / "oof.npy", cv.oof_)
        write_npy(work / "test.npy", test_pred)
        write_npy(work / "folds.npy", cv.fold_of_row_)
        info = run_info(
            inputs.competition, inputs.cfg, len(train.y), len(test.ids), train.ids, test.ids
        )
        write_json(
            work / "trial.json",
            {
                **info,
                "number": number,
                "value": value,
                "fold_scores": [float(s) for s in cv.fold_scores_],
                "params": values,
            },
        )
        if folder.exists():  # a folder of this number from a worker that was stopped
            remove_trial_dir(folder)
        os.rename(work, folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def remove_trial_dir(folder: Path) -> None:
    """Renamed out of sight first, then deleted: a reader never finds half of its files."""
    gone = folder.parent / f".{folder.name}.removed-{os.getpid()}"
    shutil.rmtree(gone, ignore_errors=True)
    try:
        os.rename(folder, gone)
    except FileNotFoundError:  # another worker removed it first
        return
    shutil.rmtree(gone, ignore_errors=True)


def remove_leftovers(out_dir: Path) -> None:
    """The hidden trial folders (written or removed) of workers that are gone (kill -9)."""
    for folder in (out_dir / "trials").glob(".*-*"):
        pid = folder.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def keep_top_k(study: optuna.Study, out_dir: Path, k: int) -> None:
    """Delete the saved predictions of completed trials that left the top k (a trial that
    left it never comes back; folders of trials still running are left alone)."""
    for trial in ranked(study)[k:]:
        folder = trial_dir(out_dir, trial.number)
        if folder.is_dir():
            remove_trial_dir(folder)


class Objective:
    def __init__(self, setup: TuneSetup):
        self.setup = setup
        self.last_error: BaseException | None = None
        self.trial: optuna.Trial | None = None  # the trial running now, for abandon()

    def __call__(self, trial: optuna.Trial) -> float:
        setup = self.setup
        self.last_error = None
        self.trial = trial
        trial.set_user_attr("worker", WORKER_ID)
        if not holds_slot(trial.study, trial.number, setup.n_trials):
            trial.set_user_attr("reason", f"{SURPLUS}: the study already holds its trials")
            raise Surplus(f"trial {trial.number} not run: the study is full")
        start = time.perf_counter()
        beat = Heartbeat(trial, setup.heartbeat) if setup.heartbeat else nullcontext()
        try:
            with beat:
                return self._run(trial, setup.space.suggest(trial))
        except optuna.TrialPruned as exc:
            trial.set_user_attr("reason", str(exc) or "pruned")
            raise
        except ConfigError as exc:
            raise self._pruned(trial, f"impossible config: {exc}") from None
        except TrainingDiverged as exc:
            raise self._pruned(trial, f"diverged: {exc}") from None
        except (MemoryError, RuntimeError) as exc:
            if not _out_of_memory(exc):
                self._failed(trial, exc)
                raise
            raise self._pruned(trial, f"out of memory: {_first_line(exc)}") from None
        except Exception as exc:
            self._failed(trial, exc)
            raise
        except (KeyboardInterrupt, Interrupted) as exc:
            trial.set_user_attr("reason", f"interrupted: {getattr(exc, 'how', 'Ctrl-C')}")
            raise
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
            free_memory()

    def _run(self, trial: optuna.Trial, values: dict) -> float:
        setup = self.setup
        inputs = trial_inputs(setup, values)
        if setup.reference:
            return self._run_reference(trial, values, inputs)
        cfg = inputs.cfg
        if cfg.train.epochs > setup.stride:
            raise ConfigError(
                f"train.epochs={cfg.train.epochs} is more than the {setup.stride} epochs per "
                "fold this study numbers its steps for; start a new study (--study NAME)."
            )
        competition = inputs.competition
        metric = competition.metric
        stop = stop_metric(
            metric, training_task(competition.task, metric, cfg.train), cfg.train.monitor
        )
        trial.set_user_attr("monitor", stop.name)  # what early stopping and the epochs watched
        reporter = Reporter(
            trial,
            setup.pruning,
            setup.stride,
            cfg.cv.folds,
            setup.on_epoch,
            watched=(stop, metric),
        )
        cv = CrossValidator(
            competition,
            cfg,
            run_dir=None,
            progress=False,
            on_epoch_end=reporter.epoch,
            on_fold_end=reporter.fold,
        ).fit(inputs.train, splits=inputs.splits, preprocessors=inputs.preprocessors)
        value = float(cv.oof_score_)
        if not math.isfinite(value):
            raise TrainingDiverged(f"the out-of-fold score is {value}")
        if setup.top_k > 0:  # for the top-k ensemble at the end, and pipeline.blend
            save_trial(setup, inputs, cv, trial.number, value, values)
        trial.set_user_attr("fold_scores", [float(s) for s in cv.fold_scores_])
        trial.set_user_attr("mean", float(np.mean(cv.fold_scores_)))
        trial.set_user_attr("best_epochs", [e + 1 for e in cv.best_epochs_])
        trial.set_user_attr("engine", getattr(cv, "engine_", "plain"))
        return value

    def _run_reference(self, trial: optuna.Trial, values: dict, inputs: Inputs) -> float:
        """A trial of `--reference`: the reference alone, fitted on every fold of the run's
        splits with the trial's settings; its out-of-fold score is the trial's value."""
        (ref,) = reference_predictions(
            inputs.competition,
            inputs.cfg,
            inputs.train,
            inputs.splits,
            test_X=inputs.test.X,
            names=[self.setup.reference],
            preprocessors=inputs.preprocessors,
        )
        value = float(ref.oof_score)
        if not math.isfinite(value):
            raise TrainingDiverged(f"the out-of-fold score is {value}")
        if self.setup.top_k > 0:
            fitted = FittedReference(ref, inputs.splits)
            save_trial(self.setup, inputs, fitted, trial.number, value, values)
        trial.set_user_attr("fold_scores", [float(s) for s in ref.fold_scores])
        trial.set_user_attr("mean", float(ref.mean))
        trial.set_user_attr("engine", self.setup.reference)
        return value

    def abandon(self) -> None:
        """After an interrupt: the running trial becomes FAIL now (Optuna does that itself only
        for a KeyboardInterrupt), so no worker waits for its heartbeat to go stale; the
        finished trials stay as they are."""
        if self.trial is not None:
            self.trial.study.tell(self.trial, state=TrialState.FAIL, skip_if_finished=True)

    def _pruned(self, trial: optuna.Trial, reason: str) -> optuna.TrialPruned:
        trial.set_user_attr("reason", reason)
        return optuna.TrialPruned(reason)

    def _failed(self, trial: optuna.Trial, exc: BaseException) -> None:
        self.last_error = exc
        trial.set_user_attr("reason", f"error: {type(exc).__name__}: {_first_line(exc)}")


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, MemoryError) or "out of memory" in str(exc).lower()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def free_memory() -> None:
    """Between trials: drop the fold models and, on a GPU, the cached blocks."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass
