"""Command-line plumbing shared by train, tune, submit and download.

User mistakes (UserError) and faults of the machine (a full disk, pipeline.faults) become one
line on stderr and exit code 2; Ctrl-C exits with 130 and SIGTERM with 143, after one line
saying what was kept (pipeline/interrupts.py); anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from pipeline.errors import UserError
from pipeline.faults import os_fault
from pipeline.interrupts import Interrupted, handled
from pipeline.interrupts import message as interrupted


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a bad command line as one line, like every other user error."""

    def error(self, message: str):
        raise UserError(f"{_required_only(self, message)} (see {self.prog} --help)")


REQUIRED = "the following arguments are required: "


def _required_only(parser: argparse.ArgumentParser, message: str) -> str:
    """argparse's list of missing arguments without the positionals that may be left out
    (`key=value ...`), which parse_intermixed_args names too when nothing was given."""
    if not message.startswith(REQUIRED):
        return message
    optional = {
        action.metavar or action.dest
        for action in parser._actions
        if not action.option_strings and action.nargs in ("*", "?")
    }
    names = [n for n in message[len(REQUIRED) :].split(", ") if n not in optional]
    return REQUIRED + ", ".join(names or message[len(REQUIRED) :].split(", "))


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
        help="folder with the competition files, or Kaggle's zip of them (extracted once "
        "beside it) (default: data/<kaggle-slug>/)",
    )
    parser.add_argument("--config", type=Path, help="YAML file of config keys (e.g. best.yaml)")
    parser.add_argument(
        "--out", type=Path, help="run folder (default: runs/<competition>/<time>/)"
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the finished run in --out, once this run has finished (until then, and "
        "if this run fails, the old one stays as it was)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def add_timeout(parser: argparse.ArgumentParser, default: float, what: str) -> None:
    parser.add_argument(
        "--timeout",
        type=float,
        default=default,
        help=f"seconds {what} may take (default {default:g})",
    )


def competition_of(args: argparse.Namespace):
    """(competition, data folder) named by a command's arguments; --timeout checked."""
    from pipeline.competition.catalog import load_competition

    if getattr(args, "timeout", None) is not None:
        check_timeout(args.timeout)
    competition = load_competition(args.competition)
    return competition, args.data_dir or competition.default_data_dir()


def check_timeout(seconds: float) -> None:
    """A command's --timeout must be a positive number of seconds."""
    if not seconds > 0:
        raise UserError(f"--timeout must be a positive number of seconds; got {seconds}.")


def run_cli(main: Callable[[], int]) -> int:
    try:
        with handled():
            return main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if (fault := os_fault(exc)) is None:
            raise
        print(f"error: {fault}", file=sys.stderr)
        return 2
    except (Interrupted, KeyboardInterrupt) as exc:
        print(interrupted(exc), file=sys.stderr, flush=True)
        return getattr(exc, "exit_code", 130)
