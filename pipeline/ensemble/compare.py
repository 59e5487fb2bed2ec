"""What a run is compared with: the same-folds references (pipeline.ensemble.references) and a
blend of the network with them, non-negative weights fitted on the out-of-fold predictions
with the competition's own metric (Caruana's greedy selection, pipeline.ensemble.weights). The
blend's score that leads is the nested one: fold k's rows blended with weights fitted on the
other folds only. The references reuse each fold's preprocessing as the network's run fitted
it. `recommend` picks the file to upload: the best nested out-of-fold score among the network,
the references and the blend."""

from __future__ import annotations

import re
from dataclasses import dataclass

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
        names, members, tests, train.y, fold_of_row, "caruana", task, metric, **RUN_BLEND
    )
    return refs, entry, test_blend


# the run's blend: Caruana's greedy selection on the metric, 50 steps, no bagging (each bag
# costs as much again; pipeline.blend bags for its larger, slower search)
RUN_BLEND = {"iterations": 50, "bags": 1}


@dataclass(frozen=True)
class Candidate:
    """A file the run can recommend: its name (network, a reference's, blend), its honest
    out-of-fold score (the blend's nested), and the file it is written to."""

    name: str
    score: float
    file: str


def candidates(network_score: float, refs: list[Reference], blend: dict | None) -> list[Candidate]:
    """The network, each reference with test predictions, and the blend, in that order."""
    out = [Candidate("network", network_score, "submission_network.csv")]
    out += [
        Candidate(r.name, r.oof_score, f"submission_{_file_part(r.name)}.csv")
        for r in refs
        if r.test is not None
    ]
    if blend and "nested_oof_score" in blend:
        out.append(Candidate("blend", blend["nested_oof_score"], "submission_blend.csv"))
    return out


def _file_part(name: str) -> str:
    """A reference's name as part of a file name (a registered title may hold spaces)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_.") or "reference"


def recommend(cands: list[Candidate], greater_is_better: bool) -> Candidate:
    """The best score (nested for the blend); a tie goes to the first listed (the network
    before the references, they before the blend: the simpler file). NaN scores never win."""
    sign = 1.0 if greater_is_better else -1.0
    scored = [c for c in cands if np.isfinite(c.score)] or cands[:1]
    return max(scored, key=lambda c: (sign * c.score, -cands.index(c)))
