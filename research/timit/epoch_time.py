"""Seconds per training epoch of a TIMIT recipe, and its peak memory, on this machine.

    python -m research.timit.epoch_time data/timit-small --rows 10000         # CPU, a slice
    python -m research.timit.epoch_time data/timit-full --epochs 1 model.name=mlp

Trains the TIMIT defaults (plus key=value overrides) with blocked K-fold CV on the first --rows
rows of the folder's train_11.npy (all rows by default) for --epochs epochs without early
stopping, and prints, per fold, seconds per epoch (training, validation and the fold's
out-of-fold prediction), then the engine, the peak GPU memory (CUDA) and the process's peak RSS.
"""

from __future__ import annotations

import argparse
import resource
import sys
from pathlib import Path

import numpy as np
import torch

from pipeline.competition.base import TrainData


def main(argv: list[str] | None = None) -> int:
    from competitions.timit import competition
    from pipeline.engine.cv import CrossValidator
    from pipeline.errors import UserError
    from pipeline.run.inputs import resolve_config

    parser = argparse.ArgumentParser(
        prog="python -m research.timit.epoch_time", description=__doc__.split("\n")[0]
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("overrides", nargs="*", help="key=value on top of the TIMIT defaults")
    parser.add_argument("--rows", type=int, help="train on the first N rows only")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_intermixed_args(argv)
    try:
        train = competition.load_train(args.data_dir)
        if args.rows:
            rows = slice(0, min(args.rows, len(train.y)))
            train = TrainData(
                X=np.asarray(train.X[rows]),
                y=train.y[rows],
                ids=train.ids[rows],
                source=train.source,
            )
        cfg = resolve_config(
            competition,
            None,
            [
                *args.overrides,
                f"cv.folds={args.folds}",
                f"train.epochs={args.epochs}",
                "train.patience=0",
            ],
        )
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        cv = CrossValidator(competition, cfg, progress=False).fit(train)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    name = cfg.model.name
    print(f"{name} on {len(train.y):,} rows, {args.folds} folds, {args.epochs} epochs:")
    for k, (seconds, epochs) in enumerate(zip(cv.fold_seconds_, cv.epochs_run_, strict=True)):
        print(f"  fold {k + 1}: {seconds / max(epochs, 1):.2f} s per epoch ({epochs} epochs)")
    per_epoch = sum(cv.fold_seconds_) / max(1, max(cv.epochs_run_))
    print(f"  all folds: {per_epoch:.2f} s per epoch; engine {cv.engine_}")
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"  peak GPU memory: {peak:.2f} GiB ({torch.cuda.get_device_name()})")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # KiB -> GiB on Linux
    print(f"  peak RSS: {rss:.2f} GiB; OOF accuracy {cv.oof_score_:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
