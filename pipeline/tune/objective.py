"""One Optuna trial = one K-fold run of the training flow, with pruning that knows about folds.

Steps: the stock Lightning pruning callback reports step = epoch, which collides across folds
(Optuna issues #3203, #4373). Here fold k, epoch e reports on step k * stride + e, where stride
is the largest train.epochs the study allows (stored with the study), so steps never collide.
When the folds train together (the fast engine) the mean over folds is reported on step e; the
trial's `steps` attribute says which, and trials are only compared with trials of the same kind.

Pruning (`--pruner`):
- median (default): at fold k, epoch e, the trial's best value in fold k so far is compared with
  the best values of completed trials in the same fold up to the same epoch; worse than their
  median -> pruned. Unlike Optuna's MedianPruner, a good first fold does not shield a bad second
  one, and a hard fold is only compared with the same fold. The first `--warmup-epochs` of each
  fold are never pruned, nor anything before `--prune-after` trials completed.
- hyperband: Optuna's HyperbandPruner on the same steps (resource = epochs trained).
- none.
With median and hyperband, a trial is also pruned after fold k (before the last fold) when the
mean of its first k fold scores is worse than the median of completed trials over the same
folds: it is then unlikely to end up among the best, and the remaining folds are saved.

A trial that cannot run (a config the checks refuse), diverges (no finite validation epoch) or
runs out of memory ends as PRUNED with the reason in its `reason` attribute, so the sampler learns
to avoid that region and the study goes on. Any other error marks the trial FAIL with its reason.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import optuna
from optuna.pruners import BasePruner
from optuna.trial import TrialState

from pipeline.competition import TestData, TrainData
from pipeline.config import Config
from pipeline.engine.cv import CrossValidator
from pipeline.errors import ConfigError, TrainingDiverged
from pipeline.inputs import Inputs, check_buildable, resolve_config
from pipeline.io import atomic_write
from pipeline.tune.space import SearchSpace, to_override
from pipeline.tune.storage import WORKER_ID, Heartbeat, holds_slot

SURPLUS = "surplus"  # the reason of a trial created when the study was already full


class Surplus(Exception):
    """The study already holds its total of finished and running trials: not run."""


# --- pruning -------------------------------------------------------------------------------------


PER_FOLD = "fold * stride + epoch"  # the trial's `steps` attribute: how its steps are numbered
FOLD_MEAN = "epoch (mean over folds)"


def step_of(fold: int | None, epoch: int, stride: int) -> int:
    """The reported step of (fold, epoch); fold None = the mean over folds trained together."""
    return epoch if fold is None else fold * stride + epoch


def _best(values: list[float], maximize: bool) -> float:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan
    return max(finite) if maximize else min(finite)


class FoldMedianPruner(BasePruner):
    """Median pruning per fold (see the module docstring); `last_reason` says why it pruned."""

    def __init__(
        self,
        stride: int,
        n_startup_trials: int = 5,
        n_warmup_epochs: int = 5,
        percentile: float = 50.0,
    ):
        self.stride = stride
        self.percentile = percentile
        self.n_startup_trials = n_startup_trials
        self.n_warmup_epochs = n_warmup_epochs
        self.last_reason = ""

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        step = trial.last_step
        if step is None:
            return False
        layout = trial.user_attrs.get("steps", PER_FOLD)
        fold, epoch = divmod(step, self.stride) if layout == PER_FOLD else (None, step)
        if epoch < self.n_warmup_epochs:
            return False
        completed = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.user_attrs.get("steps", PER_FOLD) == layout
        ]
        if len(completed) < max(self.n_startup_trials, 1):
            return False
        maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
        lo = step - epoch  # the first step of this fold

        def best_until(t) -> float:
            return _best(
                [v for s, v in t.intermediate_values.items() if lo <= s <= step], maximize
            )

        mine = best_until(trial)
        others = [b for b in map(best_until, completed) if math.isfinite(b)]
        if not math.isfinite(mine) or len(others) < max(self.n_startup_trials, 1):
            return False
        median = _percentile(others, self.percentile, maximize)
        if (mine < median) if maximize else (mine > median):
            where = (
                f"fold {fold + 1}, epoch {epoch + 1}"
                if fold is not None
                else (f"epoch {epoch + 1} (mean over folds)")
            )
            self.last_reason = (
                f"pruned at {where}: best {mine:.4g} so far is worse than the "
                f"{_label(self.percentile)} {median:.4g} of {len(others)} completed trials at "
                "the same point"
            )
            return True
        return False


def _percentile(values: list[float], percentile: float, maximize: bool) -> float:
    """The value `percentile` % of the way from best to worst (50: the median)."""
    return float(np.percentile(values, 100 - percentile if maximize else percentile))


def _label(percentile: float) -> str:
    return "median" if percentile == 50 else f"{percentile:g}th percentile"


def make_pruner(
    kind: str, stride: int, folds: int, n_startup: int, warmup: int, percentile: float = 50.0
) -> BasePruner:
    if kind == "median":
        return FoldMedianPruner(stride, n_startup, warmup, percentile)
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=max(1, warmup), max_resource=folds * stride, reduction_factor=3
        )
    return optuna.pruners.NopPruner()


def fold_rule(
    study: optuna.Study, scores: list[float], folds: int, n_startup: int, percentile: float = 50.0
) -> str | None:
    """The reason to prune after len(scores) of `folds` folds, or None to go on."""
    k = len(scores)
    if k >= folds:
        return None
    maximize = study.direction == optuna.study.StudyDirection.MAXIMIZE
    others = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        theirs = t.user_attrs.get("fold_scores") or []
        if len(theirs) >= k and all(math.isfinite(s) for s in theirs[:k]):
            others.append(float(np.mean(theirs[:k])))
    if len(others) < max(n_startup, 1):
        return None
    mine, median = float(np.mean(scores)), _percentile(others, percentile, maximize)
    if (mine < median) if maximize else (mine > median):
        return (
            f"pruned after fold {k} of {folds}: mean {mine:.4g} over folds 1-{k} is worse than "
            f"the {_label(percentile)} {median:.4g} of {len(others)} completed trials"
        )
    return None


# --- the objective -------------------------------------------------------------------------------


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
    pruner: str  # median | hyperband | none
    n_startup: int
    heartbeat: float | None  # seconds between heartbeat stamps; None: the storage has its own
    top_k: int = 0  # keep the OOF and test predictions of the k best trials (0: none)
    percentile: float = 50.0  # prune behind this % of completed trials (50: the median)
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
    check_buildable(competition, cfg, inputs.train)
    return inputs


def trial_dir(out_dir: Path, number: int) -> Path:
    return out_dir / "trials" / f"{number:05d}"


def ranked(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """Completed trials, best first."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    sign = -1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1.0
    return sorted(complete, key=lambda t: (sign * t.value, t.number))


def keep_top_k(study: optuna.Study, out_dir: Path, k: int) -> None:
    """Delete the saved predictions of completed trials that left the top k (a trial that
    left it never comes back; folders of trials still running are left alone)."""
    for trial in ranked(study)[k:]:
        folder = trial_dir(out_dir, trial.number)
        if folder.is_dir():
            shutil.rmtree(folder, ignore_errors=True)


class Objective:
    def __init__(self, setup: TuneSetup):
        self.setup = setup
        self.last_error: BaseException | None = None

    def __call__(self, trial: optuna.Trial) -> float:
        setup = self.setup
        self.last_error = None
        trial.set_user_attr("worker", WORKER_ID)
        if not holds_slot(trial.study, trial.number, setup.n_trials):
            trial.set_user_attr("reason", f"{SURPLUS}: the study already holds its trials")
            raise Surplus(f"trial {trial.number} not run: the study is full")
        start = time.perf_counter()
        beat = Heartbeat(trial, setup.heartbeat) if setup.heartbeat else _Null()
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
        except KeyboardInterrupt:
            trial.set_user_attr("reason", "interrupted: Ctrl-C")
            raise
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - start, 3))
            free_memory()

    def _run(self, trial: optuna.Trial, values: dict) -> float:
        setup = self.setup
        inputs = trial_inputs(setup, values)
        cfg = inputs.cfg
        if cfg.train.epochs > setup.stride:
            raise ConfigError(
                f"train.epochs={cfg.train.epochs} is more than the {setup.stride} epochs per "
                "fold this study numbers its steps for; start a new study (--study NAME)."
            )
        reporter = _Reporter(trial, setup, cfg.cv.folds)
        cv = CrossValidator(
            inputs.competition,
            cfg,
            run_dir=None,
            progress=False,
            on_epoch_end=reporter.epoch,
            on_fold_end=reporter.fold,
        ).fit(inputs.train)
        value = float(cv.oof_score_)
        if not math.isfinite(value):
            raise TrainingDiverged(f"the out-of-fold score is {value}")
        if setup.top_k > 0:  # for the top-k ensemble at the end
            test_pred, _ = cv.predict(inputs.test.X)
            folder = trial_dir(setup.out_dir, trial.number)
            save_npy(folder / "oof.npy", cv.oof_)
            save_npy(folder / "test.npy", test_pred)
        trial.set_user_attr("fold_scores", [float(s) for s in cv.fold_scores_])
        trial.set_user_attr("mean", float(np.mean(cv.fold_scores_)))
        trial.set_user_attr("best_epochs", [e + 1 for e in cv.best_epochs_])
        trial.set_user_attr("engine", getattr(cv, "engine_", "plain"))
        return value

    def _pruned(self, trial: optuna.Trial, reason: str) -> optuna.TrialPruned:
        trial.set_user_attr("reason", reason)
        return optuna.TrialPruned(reason)

    def _failed(self, trial: optuna.Trial, exc: BaseException) -> None:
        self.last_error = exc
        trial.set_user_attr("reason", f"error: {type(exc).__name__}: {_first_line(exc)}")


class _Reporter:
    """CrossValidator hooks: report each validation epoch, prune per epoch and per fold."""

    def __init__(self, trial: optuna.Trial, setup: TuneSetup, folds: int):
        self.trial, self.setup, self.folds = trial, setup, folds
        self.scores: list[float] = []
        self.layout = ""  # PER_FOLD, or FOLD_MEAN when the folds train together

    def epoch(self, fold: int | None, epoch: int, value: float) -> None:
        if not self.layout:
            self.layout = FOLD_MEAN if fold is None else PER_FOLD
            self.trial.set_user_attr("steps", self.layout)
        if self.setup.on_epoch is not None:
            self.setup.on_epoch(self.trial.number, fold, epoch)
        if not math.isfinite(value):
            return  # the fold stops there; a fold with no finite epoch raises TrainingDiverged
        step = step_of(fold, epoch, self.setup.stride)
        self.trial.report(value, step)
        if self.trial.should_prune():
            pruner = self.trial.study.pruner
            where = (
                f"fold {fold + 1}, epoch {epoch + 1}" if fold is not None else f"epoch {epoch + 1}"
            )
            reason = getattr(pruner, "last_reason", "") or (
                f"pruned by {type(pruner).__name__} at {where} (step {step}, value {value:.4g})"
            )
            raise optuna.TrialPruned(reason)

    def fold(self, fold: int, score: float) -> None:
        self.scores.append(float(score))
        if self.setup.pruner == "none" or self.layout == FOLD_MEAN:
            return  # folds that trained together all end at once: nothing left to save
        setup = self.setup
        reason = fold_rule(
            self.trial.study, self.scores, self.folds, setup.n_startup, setup.percentile
        )
        if reason:
            raise optuna.TrialPruned(reason)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None


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


def save_npy(path: Path, array: np.ndarray) -> None:
    def write(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, np.asarray(array))

    atomic_write(path, write)
