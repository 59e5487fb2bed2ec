"""python -m pipeline.blend <competition> RUN_DIR [RUN_DIR ...] [--out DIR] [--method M]
[--bags N] [--top-k K] [--references] [--data-dir DIR] [--overwrite]

Ensemble selection over finished runs: reads each run's out-of-fold and test predictions
(pipeline/ensemble/members.py: train runs, tune trials, a tune folder's best trials, earlier
blends), refuses runs whose competition, task, rows, ids or folds differ, by content: the data
files' sha256 and the ids in their order (pipeline/ensemble/checks.py); without --data-dir it
reads the data folder the runs read (their provenance.json). It fits non-negative weights
summing to 1 on the out-of-fold predictions with the competition's metric
(pipeline/ensemble/weights.py) and writes a run folder like pipeline.train does
(pipeline/run/folder.py): submission.csv, oof.csv, metrics.json, blend.png. The score it leads
with is nested: each fold's rows blended with weights fitted on the other folds only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.cli import ArgumentParser, run_cli
from pipeline.competition.catalog import load_competition
from pipeline.engine.splits import make_splits
from pipeline.ensemble.checks import check_members, where
from pipeline.ensemble.members import Member, load_members, run_info
from pipeline.ensemble.references import reference_predictions
from pipeline.ensemble.report import plot_blend, print_blend_summary
from pipeline.ensemble.weights import blend, fit_blend, fold_scores
from pipeline.errors import DataError, UserError
from pipeline.faults import check_writable
from pipeline.interrupts import keeping
from pipeline.io import default_run_dir, write_csv, write_json, write_npy
from pipeline.run.folder import run_folder
from pipeline.run.inputs import load_inputs
from pipeline.run.provenance import collect
from pipeline.submission.format import build_submission, write_submission

METHODS = ("caruana", "nnls", "mean")
# bagged greedy selection: 20 bootstrap samples of the rows, 50 steps each (measured in the
# README: bags of half the members, Caruana et al.'s way for libraries of hundreds of models,
# blend worse than no bagging with a handful; bootstrap bags as well or better)
CARUANA = {"iterations": 50, "bags": 20, "bag": "rows", "seed": 0}
# --references: pipeline.ensemble.references' models, on all columns
REFERENCES = ("linear", "hgb", "lightgbm")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m pipeline.blend",
        description="Blend finished runs' out-of-fold predictions: weights chosen on the "
        "same folds, a nested CV score, a validated submission.",
    )
    add = parser.add_argument
    add("competition", help="competition name or competition.yaml path, as for pipeline.train")
    add(
        "runs",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="run folders of pipeline.train, tune trials (tune-x/trials/3), or tune folders "
        "(their best saved trials)",
    )
    add("--out", type=Path, help="run folder (default: runs/<competition>/blend-<time>/)")
    add(
        "--method",
        choices=METHODS,
        default="caruana",
        help="caruana: bagged greedy selection with replacement on the metric (default); "
        "nnls: least squares over the simplex; mean: equal weights",
    )
    add(
        "--bags",
        type=int,
        default=CARUANA["bags"],
        help=f"caruana: bootstrap samples of the rows, each a greedy selection whose weights "
        f"are averaged (default {CARUANA['bags']}; 1: one selection on all rows; the time "
        "grows with it)",
    )
    add("--top-k", type=int, help="a tune folder adds its k best saved trials (default: all)")
    add(
        "--references",
        action="store_true",
        help="add the same-folds references (ridge / logistic regression, "
        "HistGradientBoosting, LightGBM) on all of the competition's columns",
    )
    add(
        "--data-dir",
        type=Path,
        help="folder with the competition files, or Kaggle's zip of them (default: the folder "
        "the first run read, from its provenance.json; else data/<kaggle-slug>/)",
    )
    add(
        "--overwrite",
        action="store_true",
        help="replace the finished run in --out, once this blend has finished",
    )
    add("--quiet", action="store_true", help="no summary table")
    return parser


def _inputs(args: argparse.Namespace, members: list[Member]):
    """The data, with the first member's folds (and all columns for --references); without
    --data-dir, from the data folder the members' runs read (their provenance.json)."""
    competition = load_competition(args.competition)
    first = members[0]
    cv, seed = first.info.get("cv") or {}, first.info.get("seed")
    overrides = [f"cv.{key}={value}" for key, value in cv.items()]
    overrides += [f"seed={seed}"] if seed is not None else []
    if args.references and hasattr(competition.features_cls(), "select"):
        overrides.append("features.select=all")
    ns = argparse.Namespace(
        competition=args.competition,
        config=None,
        overrides=overrides,
        data_dir=args.data_dir or recorded_data(members, competition),
    )
    return load_inputs(ns)


def recorded_data(members: list[Member], competition) -> Path | None:
    """The data folder the first member with a provenance.json read, while it is a folder of
    this competition's files (else None: the competition's default folder)."""
    for member in members:
        if member.data is None:
            continue
        recorded, files = Path(str(member.data.get("dir"))), set(member.data["files"])
        if files != set(competition.files) or not recorded.is_dir():
            return None
        if recorded.resolve() == competition.default_data_dir().resolve():
            return recorded  # where the blend would look anyway: nothing to say
        print(
            f"reading the data from {recorded}/, the folder {where(member)} read (its "
            "provenance.json); --data-dir chooses another",
            file=sys.stderr,
            flush=True,
        )
        return recorded
    return None


def reference_members(inputs, first: Member) -> list[Member]:
    """The references refitted on the members' folds (checked to be the same rows)."""
    competition, cfg, train = inputs.competition, inputs.cfg, inputs.train
    splits = make_splits(cfg.cv, train, cfg.seed, competition.task.is_classification)
    folds = np.full(len(train.y), -1, dtype=np.int64)
    for k, (_, va) in enumerate(splits):
        folds[va] = k
    if not np.array_equal(folds, first.folds):
        raise DataError(
            f"--references: the folds of {cfg.cv.folds}-fold {cfg.cv.strategy} CV (seed "
            f"{cfg.seed}) are not those of {where(first)}; blend without --references."
        )
    refs = reference_predictions(
        competition, cfg, train, splits, inputs.test.X, names=list(REFERENCES)
    )
    return [
        Member(f"{r.name} (all columns)", None, first.info, r.oof, r.test, folds) for r in refs
    ]


def blend_runs(args: argparse.Namespace) -> tuple[dict, dict]:
    """Load, check and blend; returns (metrics.json, the arrays and frames to write)."""
    started = time.perf_counter()
    for flag, value in (("--top-k", args.top_k), ("--bags", args.bags)):
        if value is not None and value < 1:
            raise UserError(f"{flag} must be an int >= 1; got {value}.")
    members = load_members(args.runs, args.top_k)
    inputs = _inputs(args, members)
    competition, train, test = inputs.competition, inputs.train, inputs.test
    task, metric = competition.task, competition.metric
    provenance = collect(inputs.data_dir, competition.files)
    check_members(members, competition, train, test, provenance["data"])
    if args.references:
        members += reference_members(inputs, members[0])
    names = [m.name for m in members]
    oofs, tests = [m.oof for m in members], [m.test for m in members]
    rows = np.all([np.isfinite(o).reshape(len(o), -1).all(axis=1) for o in oofs], axis=0)
    fold_of_row = np.where(rows, members[0].folds, -1)
    options = {**CARUANA, "bags": args.bags} if args.method == "caruana" else {}
    entry, result, test_blend = fit_blend(
        names, oofs, tests, train.y, fold_of_row, args.method, task, metric, **options
    )
    scored = [fold_scores(metric, train.y, o, fold_of_row) for o in oofs]
    sign = 1.0 if metric.greater_is_better else -1.0
    best = int(np.argmax([sign * s["oof_score"] for s in scored]))
    mean = fold_scores(metric, train.y, np.mean(oofs, axis=0), fold_of_row)["oof_score"]
    metrics = {
        **run_info(competition, inputs.cfg, len(train.y), len(test.ids), train.ids, test.ids),
        "kind": "blend",
        "method": args.method,
        "options": options,
        # nested: fold k blended with weights fitted on the other folds (the honest figure)
        "fold_scores": result["fold_scores"],
        "mean": result["mean"],
        "std": result["std"],
        "oof_score": result["oof_score"],
        "in_sample_oof_score": result["in_sample_score"],
        "weights": dict(zip(names, result["weights"], strict=True)),  # unrounded: the test's
        "fold_weights": result["fold_weights"],
        "members": [
            {"name": m.name, "path": str(m.path) if m.path else None, "weight": w, **s}
            for m, w, s in zip(members, result["weights"], scored, strict=True)
        ],
        "best_member": {"name": names[best], "oof_score": scored[best]["oof_score"]},
        "gain_over_best_member": sign * (result["oof_score"] - scored[best]["oof_score"]),
        "equal_weights_oof_score": mean,
        "blend": entry,
        "n_rows_blended": int(rows.sum()),
        "seconds": round(time.perf_counter() - started, 3),
    }
    oof_frame = pd.DataFrame(
        {
            "id": train.ids,
            "fold": fold_of_row,
            "target": train.y if task.is_classification else competition.to_target_scale(train.y),
            "prediction": _shown(competition, result["oof"]),
            "prediction_in_sample": _shown(competition, blend(oofs, result["weights"])),
        }
    )
    files = {
        "submission": build_submission(
            competition, test.ids, test_blend, sample=inputs.sample, fmt=inputs.fmt
        ),
        "oof": oof_frame,
        "oof_pred": result["oof"],
        "test_pred": test_blend,
        "provenance": provenance,
    }
    return metrics, files


def _shown(competition, pred: np.ndarray) -> np.ndarray:
    """oof.csv's form: labels, or values on the competition's scale."""
    task = competition.task
    return task.to_labels(pred) if task.is_classification else competition.to_target_scale(pred)


def write_blend(out: Path, metrics: dict, files: dict) -> None:
    kind = "proba" if metrics["task"]["kind"] == "classification" else "pred"
    write_npy(out / f"oof_{kind}.npy", files["oof_pred"])
    write_npy(out / f"test_{kind}.npy", files["test_pred"])
    write_csv(out / "oof.csv", files["oof"])
    write_submission(out / "submission.csv", files["submission"])
    write_json(out / "provenance.json", files["provenance"])
    plot_blend(out / "blend.png", metrics)
    write_json(out / "metrics.json", metrics)  # last: what marks a run folder


def main(argv: list[str] | None = None) -> int:
    def run() -> int:
        args = build_parser().parse_intermixed_args(argv)
        check_writable(args.out or Path("runs"))
        metrics, files = blend_runs(args)
        out = args.out or _default_out(metrics["competition"])
        with run_folder(out, args.overwrite) as work:
            write_blend(work, metrics, files)
        if not args.quiet:
            with keeping(f"the blend had finished; its files are in {out}"):
                print_blend_summary(metrics, out)
        return 0

    return run_cli(run)


def _default_out(name: str) -> Path:
    path = default_run_dir("runs", name)
    return path.with_name(f"blend-{path.name}")


if __name__ == "__main__":
    raise SystemExit(main())
