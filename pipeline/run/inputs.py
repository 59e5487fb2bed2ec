"""Everything a run reads, loaded and checked before any output is written.

`load_inputs(args)` resolves the config, loads the competition's train/test arrays and the
sample submission, checks their ids (pipeline.competition.ids), makes the folds, derives the
submission format, fits each fold's preprocessing and builds the model once, so that impossible
combinations fail before training. What the checks made is handed on (Inputs.splits, .fmt,
.preprocessors): the cross-validator trains on these folds with this preprocessing, the
references reuse it, and the submission is written in this format.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition.base import Competition, TestData, TrainData
from pipeline.competition.catalog import load_competition
from pipeline.competition.ids import check_same_ids, checked_ids
from pipeline.competition.preprocess import Preprocessor
from pipeline.config import Config, build_config, load_yaml
from pipeline.engine.splits import Split, make_splits
from pipeline.errors import ConfigError, DataError, UserError
from pipeline.model.metrics import check_target, check_task, training_task
from pipeline.submission.checks import SubmissionFormat
from pipeline.submission.format import submission_format


def resolve_config(
    competition: Competition, config_file: Path | None, overrides: Sequence[str]
) -> Config:
    layers = [(competition.defaults_source, competition.defaults())]
    if config_file is not None:
        layers.append((f"--config {config_file}", load_yaml(config_file, "Config file")))
    return build_config(competition.features_cls(), layers, list(overrides))


@dataclass
class Inputs:
    """Everything a run reads, loaded and checked before any output is written."""

    competition: Competition
    cfg: Config
    data_dir: Path
    train: TrainData
    test: TestData
    sample: pd.DataFrame | None
    fmt: SubmissionFormat  # what submission.csv holds (pipeline/submission/format.py)
    splits: list[Split]  # the folds every model of the run trains on
    preprocessors: list[Preprocessor]  # each fold's, fitted by the checks; the run reuses them


def load_inputs(args: argparse.Namespace) -> Inputs:
    competition = load_competition(args.competition)
    cfg = resolve_config(competition, args.config, args.overrides)
    data_dir = competition.resolve_data_dir(args.data_dir)
    competition.prepare_data(data_dir)  # a CSV competition learns its task here
    check_task(competition.metric, competition.task)  # a metric name or kind the task lacks
    train = competition.load_train(data_dir)
    check_target(competition.metric, train.y, train.source)
    test = competition.load_test(data_dir)
    if test.X.shape[1] != train.X.shape[1]:
        raise DataError(
            f"The test file has {test.X.shape[1]} feature columns and the train file "
            f"{train.X.shape[1]}; both must come from the same competition download."
        )
    sample = competition.load_sample_submission(data_dir)
    check_rows(competition, train, test, sample)
    fmt = submission_format(competition, sample)  # a sample that fits neither target nor classes
    train.X = competition.row_features(cfg, train.X)
    test.X = competition.row_features(cfg, test.X)
    splits, preprocessors = check_buildable(competition, cfg, train)
    return Inputs(competition, cfg, data_dir, train, test, sample, fmt, splits, preprocessors)


def check_rows(
    competition: Competition, train: TrainData, test: TestData, sample: pd.DataFrame | None
) -> None:
    """Ids unique in each file and the same in the test file and the sample (normalised in
    place: ids pandas read as whole floats become ints)."""
    column = competition.id_column
    train.ids = checked_ids(train.ids, train.source, column)
    test.ids = checked_ids(test.ids, test.source, column)
    if sample is not None:
        source, first = sample.attrs.get("source", "the sample submission"), sample.columns[0]
        sample[first] = checked_ids(sample[first].to_numpy(), source, str(first))
        check_same_ids(test.ids, test.source, sample)


def check_buildable(
    competition: Competition, cfg: Config, train: TrainData
) -> tuple[list[Split], list[Preprocessor]]:
    """Make the folds, fit each fold's preprocessing and build the model and optimizer once,
    so that impossible combinations (too few rows for the folds, group norm that does not
    divide a width, ...) fail before training starts. Returns the folds and the fitted
    preprocessing, as the cross-validator would fit it (engine/cv.py's fit_folds)."""
    import torch

    from pipeline.engine.cv import fit_folds
    from pipeline.model import models, optim

    if cfg.post.enabled and not (competition.ordered_rows and competition.task.is_classification):
        raise ConfigError(
            f"post.smooth and post.viterbi use the order of rows; {competition.name}'s rows are "
            "not consecutive frames of a classification task. Leave them off."
        )
    sequence = models.MODELS.info(cfg.model.name)["sequence"]
    if sequence and not competition.ordered_rows:
        raise ConfigError(
            f"model.name={cfg.model.name} reads windows of consecutive rows; "
            f"{competition.name}'s rows are not in time order. Use model.name=mlp."
        )
    if sequence and cfg.train.devices not in ("auto", 1):
        raise ConfigError(
            f"model.name={cfg.model.name} trains on one device (its window batches are not "
            f"sharded across processes); set train.devices=1 (got {cfg.train.devices})."
        )
    training_task(competition.task, competition.metric, cfg.train)  # a loss it cannot train
    splits = make_splits(cfg.cv, train, cfg.seed, competition.task.is_classification)
    if competition.task.is_classification:
        check_classes_per_fold(competition, cfg, train, splits)
    try:
        preprocessors = fit_folds(competition, cfg, train, splits)
    except ValueError as exc:
        if isinstance(exc, UserError):
            raise
        raise ConfigError(f"features: {exc}".splitlines()[0]) from None
    pre = preprocessors[0]
    try:
        model = models.build_model(
            cfg.model,
            pre.n_features_out_,
            competition.task.n_outputs,
            competition.frame_dim,
            embed=pre.embed,
            numeric=pre.numeric_,
        )
        optimizer = optim.build_optimizer(model, cfg.optim)
        optim.build_scheduler(optimizer, cfg.sched, cfg.train.epochs, 10, "val/x", "min")
        model.train()
        model(torch.zeros(2, pre.n_features_out_))
    except ValueError as exc:
        if isinstance(exc, UserError):
            raise
        raise ConfigError(str(exc)) from None
    return splits, preprocessors


def check_classes_per_fold(
    competition: Competition, cfg: Config, train: TrainData, splits: list[Split]
) -> None:
    """Every fold trains on two classes at least: the references (logistic regression,
    HistGradientBoosting) cannot fit one class, and a model of one class learns nothing.
    Checked here, before the network trains, rather than found by the references after it."""
    for k, (tr, _) in enumerate(splits, 1):
        present = np.unique(train.y[tr])
        if len(present) >= 2:
            continue
        names = competition.class_names()
        counts = np.bincount(np.asarray(train.y, dtype=np.int64), minlength=len(names))
        rare = int(np.argmin(np.where(counts > 0, counts, np.iinfo(np.int64).max)))
        raise DataError(
            f"{train.source}: fold {k} of {cfg.cv.folds} trains on one class only "
            f"({names[int(present[0])]!r}); class {names[rare]!r} has {counts[rare]} row(s). "
            "Each class needs rows in every fold's training part: add rows of the rare class "
            "or use fewer folds (cv.folds)."
        )
