"""python -m bench: the common template against this project's fast path, in one process.

The common template (bench/template.py) is what most Lightning notebooks write: per fold, a
TensorDataset and a DataLoader over the fold's rows, a LightningModule logging its losses every
step, a Trainer with EarlyStopping and ModelCheckpoint, one fold after another. The project's
path is `train.engine=fast` (pipeline/engine/). Both get the same data, folds, per-fold
preprocessing, architecture, optimizer, batch size and epochs; the bench prints seconds per
epoch (all folds) for each and, as its last line, the ratio. Run it from the repository root:
it is a measuring tool beside the library, not part of the installed package.

    python -m bench                               # TIMIT-like data, small, CPU (GPU if present)
    python -m bench --size full                   # 1,229,932 rows: the real TIMIT size
    python -m bench --data covid --data-dir ../shared/data/ml2021spring-hw1
                                                   # full 5-fold COVID runs with early stopping
    python -m bench --data covid --data-dir ../shared/data/ml2021spring-hw1 --seeds 5
                                                   # seconds added over seeds 0-4, scores
                                                   # averaged: steadier ratio, fair comparison
    python -m bench --size full --epochs 10 --compile reduce-overhead
                                                   # GPU: the step in CUDA graphs (the compile
                                                   # time is part of the measured seconds)

Speed goals live here, never in timed tests.
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from bench.template import project_cv, template_cv
from pipeline.cli import ArgumentParser, run_cli
from pipeline.competition.catalog import load_competition
from pipeline.config import COMPILE_MODES
from pipeline.engine.splits import make_splits
from pipeline.engine.trainer import quiet_lightning
from pipeline.errors import UserError
from pipeline.run.inputs import resolve_config


def _generated(competition, size: str, tmp: Path) -> Path:
    """Look-alike files from the plug-in's generator: the real size, or a small slice."""
    full = competition.full_size
    if full is None:
        raise UserError(f"{competition.name} cannot generate data; pass --data-dir.")
    competition.generate(tmp, *(full if size == "full" else (20_000, 1_000)), seed=0)
    return tmp


def scaled(run: tuple, folds: int) -> tuple:
    """A template run on some folds, its seconds scaled to `folds` (the folds cost alike: the
    same rows, model and epochs)."""
    seconds, epochs, scores = run
    return seconds * folds / len(epochs), epochs, scores


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--data",
        default="timit",
        help="a competition; without --data-dir its plug-in generates the data",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="the competition's files (real data: whole runs, early stopping)",
    )
    parser.add_argument(
        "--size",
        choices=("small", "full"),
        default="small",
        help="generated data: 20,000 rows, or the real files' size",
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--batch", type=int, help="batch size (default: the competition's)")
    parser.add_argument(
        "--epochs", type=int, help="epochs (generated data: 2; real data: early stopping)"
    )
    parser.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto")
    parser.add_argument(
        "--compile",
        choices=COMPILE_MODES,
        default="auto",
        help="train.compile for the project's path (auto, its default; reduce-overhead: CUDA "
        "graphs)",
    )
    parser.add_argument(
        "--template-folds",
        type=int,
        help="time the two template paths on this many folds and scale their seconds to "
        "--folds (the slow template at full size fits a few minutes); default: all folds",
    )
    parser.add_argument(
        "--repeats", type=int, default=2, help="runs of each path per seed; the fastest counts"
    )
    parser.add_argument(
        "--seeds", type=int, default=1, help="seeds 0..N-1: seconds added, scores averaged"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    def run() -> int:
        args = build_parser().parse_args(argv)
        for flag, least in (
            ("folds", 2),
            ("seeds", 1),
            ("repeats", 1),
            ("batch", 1),
            ("epochs", 1),
            ("template_folds", 1),
        ):
            value = getattr(args, flag)
            if value is not None and value < least:
                raise UserError(
                    f"--{flag.replace('_', '-')} must be an integer >= {least}; got {value}."
                )
        if args.template_folds is not None and args.template_folds > args.folds:
            raise UserError(
                f"--template-folds must be at most --folds ({args.folds}); got "
                f"{args.template_folds}."
            )
        if args.device == "gpu" and not torch.cuda.is_available():
            raise UserError(
                "--device gpu needs a CUDA GPU, and PyTorch sees none here "
                f"(torch {torch.__version__}); use --device cpu, or auto to take a GPU when "
                "there is one."
            )
        quiet_lightning()
        warnings.filterwarnings("ignore", ".*tensorboardX.*")  # the template's default logger
        accelerator = (
            args.device
            if args.device != "auto"
            else ("gpu" if torch.cuda.is_available() else "cpu")
        )
        competition = load_competition(args.data)
        overrides = [
            *competition.bench_overrides,
            f"cv.folds={args.folds}",
            f"train.accelerator={accelerator}",
        ]
        if args.batch:
            overrides.append(f"train.batch_size={args.batch}")
        early_stop = args.data_dir is not None and args.epochs is None
        if not early_stop:
            overrides += [f"train.epochs={args.epochs or 2}", "train.patience=0"]
        with tempfile.TemporaryDirectory() as tmp:
            data_dir = args.data_dir or _generated(competition, args.size, Path(tmp))
            raw = competition.load_train(data_dir)
            # per seed, each path is run --repeats times, alternating, and its fastest run is
            # kept: the first run of a process also pays for imports and lazy initialisation
            runs = {"template": [], "trimmed": [], "project": []}
            for seed in range(args.seeds):
                seeded = [*overrides, f"seed={seed}"]
                cfg = resolve_config(competition, None, seeded)
                fast_cfg = resolve_config(
                    competition,
                    None,
                    [*seeded, "train.engine=fast", f"train.compile={args.compile}"],
                )
                train = copy.copy(raw)
                train.X = competition.row_features(cfg, raw.X)
                splits = make_splits(cfg.cv, train, cfg.seed, competition.task.is_classification)
                if seed == 0:
                    device = torch.cuda.get_device_name() if accelerator == "gpu" else "CPU"
                    print(
                        f"{args.data} ({len(train.y):,} rows), {args.folds} folds, batch "
                        f"{cfg.train.batch_size}, model {cfg.model.name} {cfg.model.hidden}, "
                        f"on {device} ({torch.get_num_threads()} threads), "
                        f"{args.seeds} seed(s)",
                        flush=True,
                    )
                tries = {name: [] for name in runs}
                some = splits[: args.template_folds or len(splits)]
                template = (competition, cfg, train, some, accelerator, early_stop)
                for _ in range(args.repeats):
                    tries["template"].append(scaled(template_cv(*template), len(splits)))
                    tries["trimmed"].append(
                        scaled(template_cv(*template, trimmed=True), len(splits))
                    )
                    tries["project"].append(project_cv(competition, fast_cfg, train))
                for name, r in tries.items():
                    runs[name].append(min(r, key=lambda run: run[0]))
            # over seeds: seconds added up, epochs of every fold, one score (fold mean) per
            # seed, and the first seed's run as it was
            best = {
                name: (
                    sum(r[0] for r in rs),
                    [e for r in rs for e in r[1]],
                    [float(np.mean(r[2])) for r in rs],
                    rs[0],
                )
                for name, rs in runs.items()
            }
        name = competition.metric.name
        compiled = f", compile={args.compile}" if args.compile not in ("none", "auto") else ""
        labels = {
            "template": "common template",
            "trimmed": "template, extras off",
            "project": f"project (engine=fast{compiled})",
        }
        # seconds per epoch of all folds: a run's seconds over its mean epochs per fold
        per_epoch = {key: b[0] / max(np.mean(b[1]), 1) / args.seeds for key, b in best.items()}
        for key, label in labels.items():
            sec, _, scores, (_, first_epochs, folds) = best[key]
            if args.seeds > 1:
                spread = f"{np.mean(scores):.4f} ± {np.std(scores):.4f} over {args.seeds} seeds"
            else:
                spread = f"{np.mean(folds):.4f} ± {np.std(folds):.4f}"
            print(
                f"{label:>22}: {sec:7.2f} s total, {per_epoch[key]:.4f} s per epoch (all "
                f"folds), epochs {first_epochs}, {name} {spread}"
            )
        if args.template_folds and args.template_folds < args.folds:
            print(
                f"(the two template paths were timed on {args.template_folds} of {args.folds} "
                f"folds and their seconds scaled by {args.folds / args.template_folds:g})"
            )
        if early_stop:  # whole runs: each path's total seconds
            p_sec = best["project"][0]
            print(f"template with extras off / project: {best['trimmed'][0] / p_sec:.1f}x")
            print(
                f"ratio (whole {args.folds}-fold run, common template / project): "
                f"{best['template'][0] / p_sec:.1f}x"
            )
        else:
            p_epoch = per_epoch["project"]
            print(
                f"template with extras off / project, per epoch: "
                f"{per_epoch['trimmed'] / p_epoch:.1f}x"
            )
            print(
                f"ratio (seconds per epoch, common template / project): "
                f"{per_epoch['template'] / p_epoch:.1f}x"
            )
        return 0

    return run_cli(run)


if __name__ == "__main__":
    raise SystemExit(main())
