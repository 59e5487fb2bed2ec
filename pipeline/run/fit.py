"""One K-fold run from checked inputs to the files of a run folder, in four named steps that each
hand a value to the next: fit (cross-validate, predict the test rows), compare (the same-folds
references and the blend with them), finish (post-processing and the submissions) and write.

Writes (each atomically): config.yaml, provenance.json, oof.csv, submission.csv (the file the
run recommends: the best nested out-of-fold score among the network, the references and the
blend) with each candidate beside it (submission_network.csv, submission_<reference>.csv,
submission_blend.csv), metrics.json, and the predictions pipeline.blend reads (the network's):
oof_proba.npy / test_proba.npy (classification) or oof_pred.npy / test_pred.npy (regression, the
model's target scale); Lightning writes checkpoints/ and logs/.
"""

from __future__ import annotations

import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline import __version__
from pipeline.config import to_yaml
from pipeline.engine.choice import run_device
from pipeline.engine.cv import CrossValidator
from pipeline.ensemble.compare import Candidate, candidates, compare, recommend
from pipeline.ensemble.members import run_info
from pipeline.ensemble.references import Reference
from pipeline.io import write_csv, write_json, write_npy, write_text
from pipeline.run.inputs import Inputs
from pipeline.run.postprocess import postprocess, postprocess_oof
from pipeline.run.provenance import collect
from pipeline.submission.format import build_submission, write_submission

RUN_DIR_ENV = "PIPELINE_RUN_DIR"  # the run folder, handed to DDP worker processes


def is_ddp_worker() -> bool:
    """True in the extra processes Lightning's DDP launcher starts (rank > 0)."""
    return any(int(os.environ.get(k, "0") or 0) > 0 for k in ("LOCAL_RANK", "NODE_RANK", "RANK"))


@dataclass
class Fitted:
    """The cross-validated network and its test predictions (prediction space)."""

    cv: CrossValidator
    test_pred: np.ndarray
    test_spread: np.ndarray | None
    seconds: dict = field(default_factory=dict)


@dataclass
class Compared:
    references: list[Reference]
    blend: dict | None  # metrics.json's entry
    test_blend: np.ndarray | None


@dataclass
class Finished:
    """What the run submits, with the out-of-fold frame and post-processing scores.
    `submission` is the recommended file; `files` every candidate's, by file name."""

    oof: pd.DataFrame
    submission: pd.DataFrame
    files: dict[str, pd.DataFrame]
    recommended: dict
    post: dict | None


def fit(inputs: Inputs, out_dir: Path, progress: bool = True) -> Fitted:
    """Cross-validate on the checked folds, then predict the test rows with the fold models.
    The input checks and the engine choice come first inside the fit: a data error leaves no
    files."""
    start = time.perf_counter()
    cv = CrossValidator(inputs.competition, inputs.cfg, run_dir=out_dir, progress=progress)
    cv.fit(inputs.train, inputs.test, splits=inputs.splits, preprocessors=inputs.preprocessors)
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    test_pred, test_spread = cv.predict(inputs.test.X)
    seconds = {
        "cv_fit": round(fit_seconds, 3),
        "folds": [round(s, 3) for s in cv.fold_seconds_],
        "training": round(cv.fit_seconds_, 3),  # inside Trainer.fit: the rest is overhead
        "predict_test": round(time.perf_counter() - start, 3),
    }
    return Fitted(cv, test_pred, test_spread, seconds)


def compare_step(inputs: Inputs, fitted: Fitted) -> Compared:
    start = time.perf_counter()
    refs, blended, test_blend = compare(inputs, fitted.cv, fitted.test_pred)
    fitted.seconds["compare"] = round(time.perf_counter() - start, 3)
    return Compared(refs, blended, test_blend)


def finish(inputs: Inputs, fitted: Fitted, compared: Compared) -> Finished:
    """Out-of-fold frame, post-processing (on its own folds' labels) and the submissions."""
    competition, cfg, train, test = inputs.competition, inputs.cfg, inputs.train, inputs.test
    cv, task = fitted.cv, competition.task
    shown = task.to_labels if task.is_classification else competition.to_target_scale
    oof = pd.DataFrame(
        {
            "id": train.ids,
            "fold": cv.fold_of_row_,
            "target": train.y if task.is_classification else competition.to_target_scale(train.y),
            "prediction": shown(cv.oof_),
        }
    )
    submitted, post = fitted.test_pred, None  # the prediction space; the format decides
    if cfg.post.enabled:
        start = time.perf_counter()
        device = run_device(cfg.train.accelerator)  # Viterbi decoding: on the GPU when present
        oof["prediction_post"] = postprocess_oof(cv.oof_, train.y, cv.splits_, cfg.post, device)
        submitted = postprocess(fitted.test_pred, train.y, cfg.post, device)  # class numbers
        post = _scores(competition.metric, train.y, oof["prediction_post"].to_numpy(), cv.splits_)
        post.update(
            smooth=cfg.post.smooth,
            viterbi=cfg.post.viterbi,
            transition_weight=cfg.post.transition_weight,
            prior_weight=cfg.post.prior_weight,
            seconds=round(time.perf_counter() - start, 3),
        )
    if cv.oof_spread_ is not None:
        oof["mc_spread"] = cv.oof_spread_

    def submission(pred: np.ndarray) -> pd.DataFrame:
        return build_submission(competition, test.ids, pred, sample=inputs.sample, fmt=inputs.fmt)

    network_score = post["oof_score"] if post else cv.oof_score_
    cands = candidates(network_score, compared.references, compared.blend)
    tests = {"network": submitted, "blend": compared.test_blend}
    tests.update({r.name: r.test for r in compared.references if r.test is not None})
    files = {c.file: submission(tests[c.name]) for c in cands}
    best = recommend(cands, competition.metric.greater_is_better)
    recommended = recommendation(best, cands, competition.metric)
    return Finished(oof, files[best.file], files, recommended, post)


def recommendation(best: Candidate, cands: list[Candidate], metric) -> dict:
    """metrics.json's `recommended`: which file submission.csv is, and the line saying why."""
    others = [c for c in cands if c is not best]
    score = "nested out-of-fold" if best.name == "blend" else "out-of-fold"
    shown = ", ".join(f"{c.name} {c.score:.4f}" for c in others)
    why = f"best {score} {metric.name} {best.score:.4f}" + (f" (against {shown})" if shown else "")
    return {
        "model": best.name,
        "file": best.file,
        "score": best.score,
        "why": why,
        "scores": {c.name: c.score for c in cands},
        "files": {c.name: c.file for c in cands},
    }


def write_files(
    inputs: Inputs, fitted: Fitted, done: Finished, out_dir: Path, final_dir: Path | None
) -> None:
    """Every file of the run but metrics.json. `final_dir`: where the files will live when
    out_dir is a temporary folder (pipeline/run/folder.py)."""
    competition, test, cv = inputs.competition, inputs.test, fitted.cv
    out_dir.mkdir(parents=True, exist_ok=True)
    write_config(inputs, out_dir, final_dir)
    write_json(out_dir / "provenance.json", collect(inputs.data_dir, competition.files))
    write_csv(out_dir / "oof.csv", done.oof)
    if fitted.test_spread is not None:
        task = competition.task
        pred = task.to_labels(fitted.test_pred) if task.is_classification else fitted.test_pred
        spread = {"id": test.ids, "prediction": pred, "mc_spread": fitted.test_spread}
        write_csv(out_dir / "test_mc_spread.csv", pd.DataFrame(spread))
    # the prediction space, for pipeline.blend: probabilities, or values on the model's scale
    kind = "proba" if competition.task.is_classification else "pred"
    write_npy(out_dir / f"oof_{kind}.npy", cv.oof_)
    write_npy(out_dir / f"test_{kind}.npy", fitted.test_pred)
    for name, frame in done.files.items():
        write_submission(out_dir / name, frame)
    write_submission(out_dir / "submission.csv", done.submission)  # the recommended one


def summary(inputs: Inputs, fitted: Fitted, compared: Compared, done: Finished) -> dict:
    """metrics.json: scores per fold, references, blend, post-processing, timings."""
    cv, train = fitted.cv, inputs.train
    linear = next((r for r in compared.references if r.key == "linear"), None)
    return {
        **run_info(
            inputs.competition,
            inputs.cfg,
            len(train.y),
            len(inputs.test.ids),
            train.ids,  # digests of the rows in order: pipeline.blend checks them
            inputs.test.ids,
        ),
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
        "baseline": linear.summary() if linear is not None else None,
        "references": [r.summary() for r in compared.references],
        "blend": compared.blend,
        # submission.csv: the best honest score among the network, references and blend
        "recommended": done.recommended,
        "post": done.post,
        "seconds": dict(fitted.seconds),
        "device": device_summary(inputs.cfg),
        "versions": {"pipeline": __version__, "python": platform.python_version()},
    }


def fit_and_write(
    inputs: Inputs,
    out_dir: Path,
    progress: bool = True,
    write: bool = True,
    final_dir: Path | None = None,
) -> dict | None:
    """The whole run; returns the metrics dict. write=False (DDP worker processes) only takes
    part in training."""
    if not write:
        CrossValidator(inputs.competition, inputs.cfg, run_dir=out_dir, progress=False).fit(
            inputs.train, splits=inputs.splits, preprocessors=inputs.preprocessors
        )
        return None
    started = time.perf_counter()
    fitted = fit(inputs, out_dir, progress)
    compared = compare_step(inputs, fitted)
    done = finish(inputs, fitted, compared)
    start = time.perf_counter()
    write_files(inputs, fitted, done, out_dir, final_dir)
    fitted.seconds["write"] = round(time.perf_counter() - start, 3)
    fitted.seconds["total"] = round(time.perf_counter() - started, 3)
    metrics = summary(inputs, fitted, compared, done)
    write_json(out_dir / "metrics.json", metrics)
    return metrics


def device_summary(cfg) -> dict:
    """What the run trained on; on a CUDA device its name and the peak memory the run took."""
    device = run_device(cfg.train.accelerator)
    if device.type != "cuda":
        return {"type": device.type}
    peak = torch.cuda.max_memory_allocated(device) / 2**30
    return {"type": "cuda", "name": torch.cuda.get_device_name(device),
            "peak_memory_gib": round(peak, 2)}  # fmt: skip


def write_config(inputs: Inputs, out_dir: Path, final_dir: Path | None = None) -> None:
    shown = (final_dir or out_dir) / "config.yaml"  # where the file lives once the run is done
    header = (
        f"# resolved config of a {inputs.competition.name} run; replay with\n"
        f"# python -m pipeline.train {inputs.competition.command_name} --config {shown}"
    )
    write_text(out_dir / "config.yaml", to_yaml(inputs.cfg, header))


def _scores(metric, y: np.ndarray, pred: np.ndarray, splits) -> dict:
    folds = [metric(y[va], pred[va]) for _, va in splits]
    return {
        "fold_scores": folds,
        "mean": float(np.mean(folds)),
        "std": float(np.std(folds)),
        "oof_score": metric(y, pred),
    }
