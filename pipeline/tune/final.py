"""The end of a study: best.yaml, a final K-fold fit with the best config (submission.csv), the
optional top-k ensemble of the best trials' saved predictions, plots and tune.json."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import numpy as np
import optuna
import pandas as pd
import yaml
from optuna.trial import TrialState

from pipeline.config import load_yaml, merge, nest, parse_overrides
from pipeline.ensemble.references import reference_title
from pipeline.errors import UserError
from pipeline.io import write_csv, write_json, write_text
from pipeline.run.fit import fit_and_write
from pipeline.run.report import plot_learning_curves
from pipeline.submission.format import build_submission, write_submission
from pipeline.tune.objective import SURPLUS, TuneSetup, ranked, trial_dir, trial_inputs
from pipeline.tune.plots import save_plots
from pipeline.tune.report import reason_counts, trials_per_10_min
from pipeline.tune.storage import counts


def best_config_mapping(setup: TuneSetup, values: dict) -> dict:
    """--config file <- key=value overrides <- the trial's parameters, as one YAML mapping."""
    tree = load_yaml(setup.config_file, "Config file") if setup.config_file else {}
    tree = copy.deepcopy(tree)
    merge(tree, parse_overrides(setup.overrides))
    merge(tree, nest(values))
    return tree


def write_best_yaml(setup: TuneSetup, trial: optuna.trial.FrozenTrial, metric: str) -> Path:
    name = setup.inputs.competition.command_name
    path = setup.out_dir / "best.yaml"
    values = setup.space.decode(trial.params)
    header = (
        f"# best trial {trial.number} of the study ({metric} {trial.value:.6g}); replay with\n"
        f"# python -m pipeline.train {name} --config {path}\n"
    )
    text = yaml.safe_dump(best_config_mapping(setup, values), sort_keys=False)
    return write_text(path, header + text)


def no_complete_trial(study: optuna.Study) -> UserError:
    kinds = reason_counts(study)
    why = ", ".join(f"{n} {k}" for k, n in kinds.most_common(3)) or "none ran"
    return UserError(
        f"No trial of study {study.study_name!r} completed ({why}); see each trial's reason "
        "in tune output or the dashboard, widen the search space, or try --pruner none."
    )


def finish(
    study: optuna.Study,
    setup: TuneSetup,
    top_k: int,
    storage_shown: str,
    progress: bool,
) -> dict:
    """best.yaml, the final fit, the ensemble, plots and tune.json; returns the summary."""
    competition = setup.inputs.competition
    metric = competition.metric
    try:
        best = study.best_trial
    except ValueError:
        raise no_complete_trial(study) from None
    out_dir = setup.out_dir
    write_best_yaml(setup, best, metric.name)
    inputs = trial_inputs(setup, setup.space.decode(best.params))
    cfg = inputs.cfg
    final_metrics = fit_and_write(inputs, out_dir, progress=progress)
    plot_learning_curves(out_dir, f"val/{final_metrics['monitor']}")

    summary = {
        "competition": competition.name,
        "command_name": competition.command_name,
        "study": study.study_name,
        "storage": storage_shown,
        "metric": metric.name,
        "greater_is_better": metric.greater_is_better,
        "out_dir": str(out_dir),
        "counts": _counts(study),
        "reasons": reason_counts(study),
        "trials_per_10_min": trials_per_10_min(study),
        "best": _row(best, setup),
        "params": setup.space.paths,
        "pruner": dataclasses.asdict(setup.pruning),
        "top": [_row(t, setup) for t in ranked(study)[:10]],
        "final": {
            "folds": cfg.cv.folds,
            "oof_score": final_metrics["oof_score"],
            "mean": final_metrics["mean"],
        },
    }
    if setup.reference:  # the tuned reference's score in the final run, beside the network's
        title = reference_title(setup.reference, competition.task)
        (ref,) = [r for r in final_metrics["references"] if r["name"] == title]
        recommended = final_metrics.get("recommended") or {}
        summary["reference"] = setup.reference
        summary["final"].update(
            reference_oof_score=ref["oof_score"],
            submission=recommended.get("model", "network"),
        )
    if top_k >= 2:
        ensemble = top_k_ensemble(study, setup, top_k)
        if isinstance(ensemble, str):
            summary["ensemble_note"] = ensemble
        else:
            summary["ensemble"] = ensemble
    summary["plots"] = save_plots(study, out_dir, metric.name)
    saved = dict(summary, reasons=dict(summary["reasons"]))
    write_json(out_dir / "tune.json", saved)
    return summary


def _counts(study: optuna.Study) -> dict:
    c = counts(study)
    c["finished"] = c["complete"] + c["pruned"]
    failed = study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
    c["surplus"] = sum(t.user_attrs.get("reason", "").startswith(SURPLUS) for t in failed)
    c["fail"] -= c["surplus"]  # surplus trials were never run
    return c


def _row(trial: optuna.trial.FrozenTrial, setup: TuneSetup) -> dict:
    return {
        "number": trial.number,
        "value": trial.value,
        "params": setup.space.decode(trial.params),
        "fold_scores": trial.user_attrs.get("fold_scores", []),
        "seconds": trial.user_attrs.get("seconds"),
    }


def top_k_ensemble(study: optuna.Study, setup: TuneSetup, k: int) -> dict | str:
    """Average the k best trials' OOF and test predictions (saved under trials/); writes
    ensemble/submission.csv and ensemble/oof.csv. A string says why there is none."""
    inputs = setup.inputs
    competition, train, test = inputs.competition, inputs.train, inputs.test
    task, metric = competition.task, competition.metric
    picked = []
    for t in ranked(study):
        folder = trial_dir(setup.out_dir, t.number)
        if (folder / "oof.npy").is_file() and (folder / "test.npy").is_file():
            picked.append((t, folder))
        if len(picked) == k:
            break
    if len(picked) < 2:
        return (
            f"skipped: {len(picked)} completed trial(s) with saved predictions in "
            f"{setup.out_dir / 'trials'} (workers elsewhere keep theirs in their own --out)"
        )
    oof = np.mean([np.load(f / "oof.npy") for _, f in picked], axis=0)
    test_pred = np.mean([np.load(f / "test.npy") for _, f in picked], axis=0)
    rows = np.isfinite(oof).all(axis=1) if oof.ndim == 2 else np.isfinite(oof)
    score = metric(train.y[rows], oof[rows])
    folder = setup.out_dir / "ensemble"
    write_submission(
        folder / "submission.csv",
        build_submission(competition, test.ids, test_pred, sample=inputs.sample, fmt=inputs.fmt),
    )
    write_csv(
        folder / "oof.csv",
        pd.DataFrame({"id": train.ids, "target": train.y, "prediction": task.to_labels(oof)}),
    )
    best_single = picked[0][0].value
    return {
        "k": len(picked),
        "trials": [t.number for t, _ in picked],
        "oof_score": float(score),
        "best_single": float(best_single),
        "rows_scored": int(rows.sum()),
        "gain": float(best_single - score if not metric.greater_is_better else score - best_single)
        if math.isfinite(score)
        else None,
    }
