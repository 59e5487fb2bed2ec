"""python -m pipeline.train <competition> [--data-dir DIR] [--out DIR] [--config FILE] [key=value]

K-fold training with the competition's defaults (or your overrides), then a validated
submission. Prints per-fold scores, mean ± std, a linear baseline on the same folds, the time,
and where the files went. The run is written to a temporary folder beside --out and moved
there when it has finished (pipeline/run/folder.py).
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.cli import ArgumentParser, add_common_args, run_cli
from pipeline.faults import check_writable
from pipeline.interrupts import keeping
from pipeline.io import default_run_dir
from pipeline.run.fit import RUN_DIR_ENV, fit_and_write, is_ddp_worker
from pipeline.run.folder import run_folder
from pipeline.run.inputs import load_inputs
from pipeline.run.report import plot_learning_curves, print_summary


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m pipeline.train",
        description="K-fold training of a competition's model, ending in a submission.",
    )
    add_common_args(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    def run() -> int:
        args = build_parser().parse_intermixed_args(argv)
        check_writable(args.out or Path("runs"))  # before the data: a bad --out fails at once
        inputs = load_inputs(args)
        if is_ddp_worker():
            # a process Lightning's DDP launcher started: it trains its share, rank 0 writes
            fit_and_write(inputs, Path(os.environ[RUN_DIR_ENV]), progress=False, write=False)
            return 0
        out_dir = args.out or default_run_dir("runs", inputs.competition.name)
        with run_folder(out_dir, args.overwrite) as work:
            os.environ[RUN_DIR_ENV] = str(work)  # DDP workers inherit it: the same folder
            metrics = fit_and_write(inputs, work, progress=not args.quiet, final_dir=out_dir)
            plot_learning_curves(work, f"val/{metrics['monitor']}")
        with keeping(f"the run had finished; its files are in {out_dir}"):
            print_summary(metrics, out_dir)
        return 0

    return run_cli(run)


if __name__ == "__main__":
    raise SystemExit(main())
