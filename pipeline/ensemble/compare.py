"""What a run is compared with: the same-folds references (pipeline.ensemble.references) and a
blend of the network with them, non-negative weights fitted on the out-of-fold predictions
(pipeline.ensemble.weights). The blend's score that leads is the nested one: fold k's rows blended
with weights fitted on the other folds only. The references reuse each fold's preprocessing as the
network's run fitted it."""

from __future__ import annotations

import numpy as np

from pipeline.ensemble.references import Reference, reference_predictions
from pipeline.ensemble.weights import fit_blend

BLEND_CELLS = 20_000_000  # rows x outputs above which the blend is skipped (memory, time)


def compare(
    inputs, cv, test_pred: np.ndarray
) -> tuple[list[Reference], dict | None, np.ndarray | None]:
    """(references, the blend's metrics.json entry or None, the blend's test predictions)."""
    competition, cfg, train, test = inputs.competition, inputs.cfg, inputs.train, inputs.test
    pres = [fold.preprocessor for fold in sorted(cv.folds_, key=lambda f: f.fold)]
    refs = reference_predictions(competition, cfg, train, cv.splits_, test.X, preprocessors=pres)
    usable = [r for r in refs if r.test is not None]
    if not cfg.cv.blend or not usable:
        return refs, None, None
    task, metric = competition.task, competition.metric
    if len(train.y) * task.n_outputs > BLEND_CELLS:
        return refs, {"skipped": f"more than {BLEND_CELLS:,} out-of-fold cells"}, None
    names = ["network", *(r.name for r in usable)]
    members = [np.asarray(cv.oof_, dtype=np.float64), *(r.oof for r in usable)]
    fold_of_row = np.where(
        np.isfinite(members[0]).reshape(len(train.y), -1).all(axis=1), cv.fold_of_row_, -1
    )
    tests = [np.asarray(test_pred, dtype=np.float64), *(r.test for r in usable)]
    entry, _, test_blend = fit_blend(
        names, members, tests, train.y, fold_of_row, "nnls", task, metric
    )
    return refs, entry, test_blend
