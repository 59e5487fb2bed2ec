"""python -m pipeline.tune <competition> [--trials N] [--timeout S] [--storage URL] [--study NAME]
[--space FILE] [--data-dir DIR] [--out DIR] [key=value ...]

Optuna search over the competition's `search:` space (config paths), each trial a full K-fold
run of the training flow with pruning across folds and epochs; the study lives in a storage that
several workers share and that survives crashes. At the end: best value and parameters,
best.yaml (replay with `python -m pipeline.train <competition> --config best.yaml`), a final
K-fold fit with the best config (submission.csv), a top-k ensemble of the best trials, plots.

Several workers: start the same command (same --out, or the same --storage and --study) as many
times as you like; together they run exactly --trials finished trials. Resume after a crash or
Ctrl-C: run the same command again (without --out it continues the newest tuning run of the
competition, on the data folder it read: pipeline/tune/resume.py); on a study that has ended it
prints the summary and how to add trials. --overwrite starts a fresh study instead. A full disk
or a failing storage is one line; a fresh study without a finished trial then leaves no folder.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import warnings
from pathlib import Path

import optuna

from pipeline.cli import ArgumentParser, add_common_args, check_timeout, run_cli
from pipeline.competition.catalog import load_competition
from pipeline.config import flatten, parse_overrides
from pipeline.errors import ConfigError, UserError
from pipeline.faults import check_writable, os_fault
from pipeline.interrupts import keeping
from pipeline.io import write_json
from pipeline.run.folder import repair_leftovers
from pipeline.run.inputs import load_inputs, resolve_config
from pipeline.run.provenance import collect, recorded_data_dir
from pipeline.tune.final import finish
from pipeline.tune.objective import TuneSetup, remove_leftovers
from pipeline.tune.pruners import Pruning, list_pruners
from pipeline.tune.report import TuneProgress, print_tune_summary
from pipeline.tune.resume import (
    check_overwritable,
    choose_dir,
    drop_study,
    finished_summary,
    opened,
    restore_overwritten,
)
from pipeline.tune.space import load_reference_space, load_space
from pipeline.tune.storage import (
    FINISHED,
    default_url,
    n_finished,
    native_heartbeat,
    quiet_storage_threads,
    shown_url,
    storage_fault,
)
from pipeline.tune.study import open_study, run_trials, writes_final

UNLIMITED = 10**9  # --timeout without --trials


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m pipeline.tune",
        description="Optuna search with K-fold CV and pruning, ending in a submission.",
    )
    add_common_args(parser)
    for action in parser._actions:
        if "--out" in action.option_strings:
            action.help = (
                "run folder (default: the newest unfinished runs/<competition>/tune-*/, else "
                "runs/<competition>/tune-<time>/); to resume, the same"
            )
        if "--overwrite" in action.option_strings:
            action.help = (
                "start a fresh study: the old study (and the files in --out) are deleted "
                "before the first trial; without it the study in --out resumes"
            )
    add = parser.add_argument
    add(
        "--trials",
        type=int,
        help="finished (complete + pruned) trials the study should hold, over all workers "
        "(default 50; no limit when only --timeout is given)",
    )
    add("--timeout", type=float, help="stop starting trials after this many seconds")
    add("--storage", help="Optuna storage URL or journal:PATH (default: sqlite in --out)")
    add("--study", help="study name (default: the competition's name)")
    add("--space", type=Path, help="YAML search space replacing the competition's search:")
    add(
        "--pruner",
        choices=list_pruners(),
        default="median",
        help="median (per fold, default), wilcoxon (paired fold scores against the best "
        "trial), hyperband, or none",
    )
    add("--prune-after", type=int, default=5, help="completed trials before pruning starts (5)")
    add(
        "--prune-percentile",
        type=float,
        default=50.0,
        help="median pruner: prune a trial behind this percentage of completed trials at the "
        "same fold and epoch (50, the median; higher prunes less)",
    )
    add(
        "--prune-p",
        type=float,
        default=0.1,
        help="wilcoxon pruner: prune a trial worse than the best trial with a one-sided p-value "
        "below this (0.1; higher prunes more and sooner)",
    )
    add(
        "--warmup-epochs",
        type=int,
        help="epochs of each fold never pruned (default: train.patience, the epochs early "
        "stopping grants a fold to improve; 5 without early stopping)",
    )
    add("--top-k", type=int, default=5, help="ensemble of the k best trials (5; 0 = off)")
    add("--seed", type=int, help="sampler seed (default: the config's seed)")
    add("--heartbeat", type=int, default=10, help="seconds between a trial's heartbeats (10)")
    add(
        "--threads",
        type=int,
        help="CPU threads for this worker (default: PyTorch's); with several workers on one "
        "machine give each cores / workers",
    )
    add(
        "--reference",
        choices=["lightgbm"],
        help="tune this reference model's settings (lightgbm.* keys) on the run's folds instead "
        "of the network: each trial fits the reference only (no pruning); the final fit is a "
        "whole pipeline.train run with the best settings",
    )
    add("--no-final", action="store_true", help="only run trials: no final fit or ensemble")
    return parser


def check_args(args: argparse.Namespace) -> None:
    if args.trials is None:
        args.trials = UNLIMITED if args.timeout is not None else 50
    for name, low in (("trials", 1), ("prune_after", 0), ("warmup_epochs", 0), ("top_k", 0)):
        value = getattr(args, name)
        if value is not None and value < low:
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} must be an int >= {low}; got {value}.")
    if args.timeout is not None:
        check_timeout(args.timeout)
    if args.heartbeat < 1:
        raise UserError(f"--heartbeat must be an int >= 1 (seconds); got {args.heartbeat}.")
    if not 0 < args.prune_percentile < 100:
        raise UserError(f"--prune-percentile must be in (0, 100); got {args.prune_percentile}.")
    if not 0 < args.prune_p < 1:
        raise UserError(f"--prune-p must be in (0, 1); got {args.prune_p}.")
    if args.threads is not None and args.threads < 1:
        raise UserError(f"--threads must be an int >= 1; got {args.threads}.")


def check_tune_dir(out_dir: Path, overwrite: bool) -> None:
    """A new folder, or one of an earlier tuning run (resume); other runs' folders are refused."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(f"--out {out_dir} exists and is not a folder; choose another path.")
    if not out_dir.is_dir():
        return
    if overwrite:
        return check_overwritable(out_dir)
    names = {p.name for p in out_dir.iterdir() if not p.name.startswith(".")}
    if names and not names & {"tune.json", "study.db", "trials"}:
        raise UserError(
            f"--out {out_dir} holds files of another run; choose a new folder, give the folder "
            "of an earlier tuning run to resume it, or add --overwrite."
        )


def with_reference(competition, args: argparse.Namespace) -> list[str]:
    """The overrides, plus what makes every run of the study (the final fit, best.yaml's
    replay) score the tuned reference: cv.baseline on and the reference in cv.references."""
    cfg = resolve_config(competition, args.config, args.overrides)
    extra = [] if cfg.cv.baseline else ["cv.baseline=true"]
    if args.reference not in cfg.cv.references:
        extra.append(f"cv.references=[{','.join([*cfg.cv.references, args.reference])}]")
    return [*args.overrides, *extra]


def searched_overrides(overrides: list[str], paths: list[str]) -> None:
    fixed = set(flatten(parse_overrides(overrides)))
    both = [p for p in paths if p in fixed]
    if both:
        raise ConfigError(
            f"{', '.join(both)} is both set on the command line and searched; drop the "
            "key=value or remove it from the search space (--space)."
        )


def main(argv: list[str] | None = None) -> int:
    def run() -> int:
        args = build_parser().parse_intermixed_args(argv)
        check_args(args)
        return tune(args)

    return run_cli(run)


def tune(args: argparse.Namespace) -> int:
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)  # workers sharing cores must not oversubscribe them
    check_writable(args.out or Path("runs"))  # before the data: a bad --out fails at once
    competition = load_competition(args.competition)
    name = args.study or competition.name
    out_dir = choose_dir(
        args.out, competition.name, name, args.storage, args.trials, args.overwrite
    )
    restore_overwritten(out_dir, _say)  # an --overwrite killed before its study was in place
    repair_leftovers(out_dir)
    done = None if args.overwrite else finished_summary(out_dir, args.trials)
    if done is not None:
        return _print_finished(done, args.trials)
    check_tune_dir(out_dir, args.overwrite)
    if args.data_dir is None and not args.overwrite:
        recorded = recorded_data_dir(out_dir / "tune.json", competition.files)
        default = competition.default_data_dir().resolve()
        if recorded is not None and recorded.resolve() != default:
            args.data_dir = recorded
            _say(f"reading the data from {recorded}/, the folder this study read")
    if args.reference:
        args.overrides = with_reference(competition, args)
    inputs = load_inputs(args)
    competition, cfg = inputs.competition, inputs.cfg
    if args.reference:
        space = load_reference_space(args.reference, args.space, cfg)
    else:
        space = load_space(competition, args.space, cfg)
    searched_overrides(args.overrides, space.paths)
    url = args.storage or default_url(out_dir)
    made = not out_dir.exists()
    try:
        with quiet_storage_threads():
            return _tune(args, inputs, space, name, out_dir, url)
    except BaseException as exc:
        fault = storage_fault(exc, url)
        if fault is None and not (isinstance(exc, OSError) and os_fault(exc) is not None):
            raise
        if made and not args.storage:  # a fresh study that holds no result yet: no trace
            _remove_if_empty(out_dir, url)
        if fault is not None:
            raise fault from None
        raise


def _tune(args, inputs, space, name: str, out_dir: Path, url: str) -> int:
    competition, cfg = inputs.competition, inputs.cfg
    stride = max(cfg.train.epochs, int(space.max_value("train.epochs") or 0))
    pruning = Pruning(
        kind="none" if args.reference else args.pruner,  # a reference's trial reports no epochs
        n_startup=args.prune_after,
        # the epochs early stopping grants a fold to improve
        warmup=(cfg.train.patience or 5) if args.warmup_epochs is None else args.warmup_epochs,
        percentile=args.prune_percentile,
        p_threshold=args.prune_p,
    )
    seed = cfg.seed if args.seed is None else args.seed
    with opened(out_dir, url, bool(args.storage), args.heartbeat, args.overwrite) as ready:
        storage, replaced = ready
        dropped = args.overwrite and drop_study(storage, name)
        # in the block: a study this run may not use (another direction) leaves no file
        study, stride = open_study(storage, name, competition, cfg, stride, pruning, seed)
        if args.reference and not study.get_trials(deepcopy=False):
            study.enqueue_trial(space.numeric_start(cfg))  # trial 0: the reference's defaults
        if not (out_dir / "provenance.json").exists():  # the data folder, for a resume
            write_json(out_dir / "provenance.json", collect(inputs.data_dir, competition.files))
        if not (out_dir / "tune.json").exists():  # last: a second worker sees a tune folder
            write_json(
                out_dir / "tune.json",
                {"competition": competition.name, "study": name, "storage": shown_url(url)},
            )
    if args.overwrite and (dropped or replaced):
        _say(
            f"--overwrite: a fresh study {name!r} in {shown_url(url)}; the old study and the "
            f"files in {out_dir} were deleted."
        )
    remove_leftovers(out_dir)
    native = native_heartbeat(storage)
    total = None if args.trials == UNLIMITED else args.trials
    progress = TuneProgress(total, competition.metric.name, enabled=not args.quiet)
    setup = TuneSetup(
        inputs=inputs,
        config_file=args.config,
        overrides=list(args.overrides),
        space=space,
        out_dir=out_dir,
        n_trials=args.trials,
        stride=stride,
        pruning=pruning,
        heartbeat=None if native else args.heartbeat,
        top_k=args.top_k,
        reference=args.reference,
        on_epoch=progress.epoch,
        raw=_raw_arrays(inputs, space.paths),
    )
    if not args.quiet:
        _say(
            f"tuning {competition.name}: study {name!r} in {shown_url(url)} "
            f"({n_finished(study)} finished trials); resume or add workers with --out {out_dir}"
            + (f" --storage {shown_url(url)}" if args.storage else "")
        )
    where = shown_url(url) if args.storage else out_dir

    def kept(then: str = "") -> str:
        n = n_finished(study)
        trials = "1 finished trial is" if n == 1 else f"{n} finished trials are"
        return f"{trials} kept in the study in {where}{then}; run the same command to resume"

    progress.start(n_finished(study))
    try:
        with keeping(kept):
            stopped, ran = run_trials(
                study, setup, args.timeout, native, 3 * args.heartbeat, progress
            )
    finally:
        progress.stop()
    if args.no_final or not writes_final(study, stopped, ran):
        return 0
    with keeping(lambda: kept(" (the final fit did not finish)")):
        summary = finish(study, setup, args.top_k, shown_url(url), progress=not args.quiet)
    print_tune_summary(summary)
    return 0


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _print_finished(summary: dict, trials: int) -> int:
    """A finished study, run again with the same command: its summary, and how to go on."""
    print_tune_summary(summary)
    n = summary["counts"]["finished"]
    print(
        f"the study has ended: {n} finished trials (--trials {trials}) and its final fit; "
        f"nothing was run. Add trials with --trials {n + max(10, n // 2)} (the rest of the "
        "command the same), or start a new study with --overwrite or another --out."
    )
    return 0


def _remove_if_empty(out_dir: Path, url: str) -> None:
    """A study this run created in out_dir, failed before any trial finished (a full disk):
    the folder goes, as a failed train leaves none. A study with results stays."""
    try:
        for summary in optuna.get_all_study_summaries(storage=url):
            study = optuna.load_study(study_name=summary.study_name, storage=url)
            if study.get_trials(deepcopy=False, states=FINISHED):
                return
    except Exception:  # a storage that cannot be read now: keep what is there
        if (out_dir / "study.db").exists():
            return
    shutil.rmtree(out_dir, ignore_errors=True)


def _raw_arrays(inputs, paths: list[str]):
    """The files' arrays before row features, when the searched keys can change them."""
    if not any(p.startswith("features.") for p in paths):
        return None
    competition = inputs.competition
    data_dir = inputs.data_dir
    return competition.load_train(data_dir), competition.load_test(data_dir)
