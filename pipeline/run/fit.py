"""One K-fold run from checked inputs to the files of a run folder.

Writes (each atomically): config.yaml, oof.csv, submission.csv, metrics.json, and the
predictions pipeline.blend reads: oof_proba.npy / test_proba.npy (classification) or
oof_pred.npy / test_pred.npy (regression, the model's target scale); Lightning writes
checkpoints/ and logs/.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline import __version__
from pipeline.config import to_yaml
from pipeline.engine.cv import CrossValidator
from pipeline.ensemble.compare import compare
from pipeline.ensemble.members import run_info
from pipeline.io import write_csv, write_json, write_npy, write_text
from pipeline.run.inputs import Inputs
from pipeline.run.postprocess import postprocess, postprocess_oof
from pipeline.run.provenance import collect
from pipeline.submission.format import build_submission, write_submission


def write_config(inputs: Inputs, out_dir: Path, final_dir: Path | None = None) -> None:
    shown = (final_dir or out_dir) / "config.yaml"  # where the file lives once the run is done
    header = (
        f"# resolved config of a {inputs.competition.name} run; replay with\n"
        f"# python -m pipeline.train {inputs.competition.command_name} --config {shown}"
    )
    write_text(out_dir / "config.yaml", to_yaml(inputs.cfg, header))


RUN_DIR_ENV = "PIPELINE_RUN_DIR"  # the run folder, handed to DDP worker processes


def is_ddp_worker() -> bool:
    """True in the extra processes Lightning's DDP launcher starts (rank > 0)."""
    return any(int(os.environ.get(k, "0") or 0) > 0 for k in ("LOCAL_RANK", "NODE_RANK", "RANK"))


def fit_and_write(
    inputs: Inputs,
    out_dir: Path,
    progress: bool = True,
    write: bool = True,
    final_dir: Path | None = None,
):
    """Cross-validate, predict the test rows, write every file; returns the metrics dict.
    write=False (DDP worker processes) only takes part in training. `final_dir`: where the
    files will live when out_dir is a temporary folder (pipeline/run/folder.py)."""
    competition, cfg, train, test = inputs.competition, inputs.cfg, inputs.train, inputs.test
    task, metric = competition.task, competition.metric
    if not write:
        CrossValidator(competition, cfg, run_dir=out_dir, progress=False).fit(train)
        return None
    started = time.perf_counter()
    # the input checks and the engine choice come first inside fit: a data error leaves no files
    cv = CrossValidator(competition, cfg, run_dir=out_dir, progress=progress).fit(train, test)
    fit_seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    write_config(inputs, out_dir, final_dir)
    write_json(out_dir / "provenance.json", collect(inputs.data_dir, competition.files))

    t0 = time.perf_counter()
    test_pred, test_spread = cv.predict(test.X)
    predict_seconds = time.perf_counter() - t0

    refs, blended, test_blend = compare(inputs, cv, test_pred)
    linear = next((r for r in refs if r.key == "linear"), None)
    baseline = linear.summary() if linear is not None else None

    submitted = test_pred  # the prediction space; the submission format decides what is written
    oof = pd.DataFrame(
        {
            "id": train.ids,
            "fold": cv.fold_of_row_,
            "target": train.y if task.is_classification else competition.to_target_scale(train.y),
            "prediction": task.to_labels(cv.oof_)
            if task.is_classification
            else competition.to_target_scale(cv.oof_),
        }
    )
    post = None
    if cfg.post.enabled:
        t0 = time.perf_counter()
        oof["prediction_post"] = postprocess_oof(cv.oof_, train.y, cv.splits_, cfg.post)
        submitted = postprocess(test_pred, train.y, cfg.post)  # class numbers
        post = _scores(metric, train.y, oof["prediction_post"].to_numpy(), cv.splits_)
        post.update(smooth=cfg.post.smooth, viterbi=cfg.post.viterbi,
                    transition_weight=cfg.post.transition_weight,
                    prior_weight=cfg.post.prior_weight,
                    seconds=round(time.perf_counter() - t0, 3))  # fmt: skip
    submission = build_submission(competition, test.ids, submitted, sample=inputs.sample)
    if cv.oof_spread_ is not None:
        oof["mc_spread"] = cv.oof_spread_
    write_csv(out_dir / "oof.csv", oof)
    if test_spread is not None:
        write_csv(
            out_dir / "test_mc_spread.csv",
            pd.DataFrame(
                {
                    "id": test.ids,
                    "prediction": test_pred
                    if not task.is_classification
                    else task.to_labels(test_pred),
                    "mc_spread": test_spread,
                }
            ),
        )
    # the prediction space, for pipeline.blend: probabilities, or values on the model's scale
    kind = "proba" if task.is_classification else "pred"
    write_npy(out_dir / f"oof_{kind}.npy", cv.oof_)
    write_npy(out_dir / f"test_{kind}.npy", test_pred)
    write_submission(out_dir / "submission.csv", submission)
    if test_blend is not None:
        write_submission(
            out_dir / "submission_blend.csv",
            build_submission(competition, test.ids, test_blend, sample=inputs.sample),
        )

    metrics = {
        **run_info(competition, cfg, len(train.y), len(test.ids)),
        # what early stopping and checkpoints watched (train.monitor): the metric or the loss
        "monitor": cv.stop_.name,
        "engine": cv.engine_,
        "engine_note": cv.engine_note_,
        "fold_scores": cv.fold_scores_,
        "mean": float(np.mean(cv.fold_scores_)),
        "std": float(np.std(cv.fold_scores_)),
        "oof_score": cv.oof_score_,
        "best_epochs": [e + 1 for e in cv.best_epochs_],
        "epochs_run": cv.epochs_run_,
        "baseline": baseline,
        "references": [r.summary() for r in refs],
        "blend": blended,
        "post": post,
        "seconds": {
            "total": round(time.perf_counter() - started, 3),
            "cv_fit": round(fit_seconds, 3),
            "folds": [round(s, 3) for s in cv.fold_seconds_],
            "predict_test": round(predict_seconds, 3),
        },
        "versions": {"pipeline": __version__, "python": platform.python_version()},
    }
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def _scores(metric, y: np.ndarray, pred: np.ndarray, splits) -> dict:
    folds = [metric(y[va], pred[va]) for _, va in splits]
    return {
        "fold_scores": folds,
        "mean": float(np.mean(folds)),
        "std": float(np.std(folds)),
        "oof_score": metric(y, pred),
    }
