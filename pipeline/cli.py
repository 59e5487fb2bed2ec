"""Command-line plumbing shared by train, tune, submit and download.

User mistakes (UserError) become one line on stderr and exit code 2; Ctrl-C exits with 130;
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.competition import Competition, TestData, TrainData, load_competition
from pipeline.config import Config, build_config, load_yaml
from pipeline.errors import ConfigError, DataError, UserError


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line, like every other user error."""

    def error(self, message: str):
        raise UserError(f"{message} (see {self.prog} --help)")


def add_common_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("competition", help="competition name, e.g. covid, timit, demo")
    parser.add_argument(
        "overrides",
        nargs="*",
        metavar="key=value",
        help="config overrides, e.g. model.dropout=0.3 cv.folds=10",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder with the competition files (default: data/<kaggle-slug>/)",
    )
    parser.add_argument("--config", type=Path, help="YAML file of config keys (e.g. best.yaml)")
    parser.add_argument(
        "--out", type=Path, help="run folder (default: runs/<competition>/<time>/)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="allow --out to be a folder that already holds files",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def check_timeout(seconds: float) -> None:
    """A command's --timeout must be a positive number of seconds."""
    if not seconds > 0:
        raise UserError(f"--timeout must be a positive number of seconds; got {seconds}.")


def run_cli(main: Callable[[], int]) -> int:
    try:
        return main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def resolve_config(
    competition: Competition, config_file: Path | None, overrides: Sequence[str]
) -> Config:
    layers = [(f"competitions/{competition.name}/defaults.yaml", competition.defaults())]
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


def load_inputs(args: argparse.Namespace) -> Inputs:
    competition = load_competition(args.competition)
    cfg = resolve_config(competition, args.config, args.overrides)
    data_dir = args.data_dir or competition.default_data_dir()
    if args.data_dir is not None and not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder.")
    competition.prepare_data(data_dir)
    train = competition.load_train(data_dir)
    test = competition.load_test(data_dir)
    if test.X.shape[1] != train.X.shape[1]:
        raise DataError(
            f"The test file has {test.X.shape[1]} feature columns and the train file "
            f"{train.X.shape[1]}; both must come from the same competition download."
        )
    train.X = competition.row_features(cfg, train.X)
    test.X = competition.row_features(cfg, test.X)
    sample = competition.load_sample_submission(data_dir)
    if sample is not None and len(sample) != len(test.ids):
        raise DataError(
            f"The sample submission has {len(sample)} rows and the test file {len(test.ids)}; "
            "download the competition files again."
        )
    check_buildable(competition, cfg, train)
    return Inputs(competition, cfg, data_dir, train, test, sample)


def check_buildable(competition: Competition, cfg: Config, train: TrainData) -> None:
    """Build the preprocessor, model and optimizer once, so that impossible combinations
    (group norm that does not divide a width, ...) fail before training starts."""
    import torch

    from pipeline import models, optim

    if cfg.post.enabled and not (competition.ordered_rows and competition.task.is_classification):
        raise ConfigError(
            f"post.smooth and post.viterbi use the order of rows; {competition.name}'s rows are "
            "not consecutive frames of a classification task. Leave them off."
        )
    pre = competition.make_preprocessor(cfg, train)
    rows = min(len(train.y), 64)
    pre.fit(train.X[:rows], train.y[:rows])
    try:
        model = models.build_model(
            cfg.model, pre.n_features_out_, competition.task.n_outputs, competition.frame_dim
        )
        optimizer = optim.build_optimizer(model, cfg.optim)
        optim.build_scheduler(optimizer, cfg.sched, cfg.train.epochs, 10, "val/x", "min")
        model.train()
        model(torch.zeros(2, pre.n_features_out_))
    except ValueError as exc:
        if isinstance(exc, UserError):
            raise
        raise ConfigError(str(exc)) from None
