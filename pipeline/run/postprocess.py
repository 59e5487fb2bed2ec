"""Post-processing for rows that are consecutive frames: smoothing and Viterbi decoding.

Frame classifiers decide each row alone, yet labels come in runs (a phone lasts several frames)
and follow each other with typical transitions. Averaging class probabilities over neighbouring
rows removes isolated flips; Viterbi decoding finds the most likely label sequence under a
class-transition matrix estimated from training labels, with the network's posteriors divided
by the class priors raised to `prior_weight` as emission scores (1: the hybrid NN/HMM recipe's
scaled likelihoods; below 1 damps the boost that division gives rare classes).

Everything that is estimated (transitions, priors) comes from training labels only: for
out-of-fold scores, from the fold's own training rows.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import uniform_filter1d

from pipeline.engine.windows import row_runs
from pipeline.run.viterbi import viterbi_runs


def smooth(proba: np.ndarray, window: int) -> np.ndarray:
    """Centred moving average of probabilities over `window` rows (edges: nearest row)."""
    if window <= 1:
        return proba
    return uniform_filter1d(proba, size=window, axis=0, mode="nearest")


def label_statistics(labels: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Log transition matrix (rows: from, columns: to) and log class priors, add-one smoothed."""
    counts = np.ones((n_classes, n_classes))
    np.add.at(counts, (labels[:-1], labels[1:]), 1)
    trans = counts / counts.sum(axis=1, keepdims=True)
    prior = (np.bincount(labels, minlength=n_classes) + 1.0) / (len(labels) + n_classes)
    return np.log(trans), np.log(prior)


def decode(
    runs: list[np.ndarray], train_labels: np.ndarray, cfg, device="cpu"
) -> list[np.ndarray]:
    """Class probabilities of independent runs of consecutive rows -> their labels; cfg is the
    `post` config section, `device` where Viterbi decoding runs (pipeline/run/viterbi.py)."""
    runs = [smooth(proba, cfg.smooth) for proba in runs]
    if not cfg.viterbi:
        return [proba.argmax(axis=1) for proba in runs]
    log_trans, log_prior = label_statistics(train_labels, runs[0].shape[1])
    emits = [np.log(np.clip(p, 1e-8, None)) - cfg.prior_weight * log_prior for p in runs]
    return viterbi_runs(emits, cfg.transition_weight * log_trans, device=device)


def postprocess(proba: np.ndarray, train_labels: np.ndarray, cfg, device="cpu") -> np.ndarray:
    """Class probabilities of consecutive rows (one run, e.g. the test rows) -> labels."""
    return decode([proba], train_labels, cfg, device)[0]


def runs(index: np.ndarray) -> list[np.ndarray]:
    """Split sorted row indices into runs of consecutive rows (each run is one sequence)."""
    index = np.sort(index)
    return [index[a:b] for a, b in row_runs(index)]


def postprocess_oof(oof: np.ndarray, y: np.ndarray, splits, cfg, device="cpu") -> np.ndarray:
    """Out-of-fold labels after post-processing; each fold uses its own training labels and
    decodes each run of consecutive validation rows as one sequence (a fold's runs at once)."""
    labels = oof.argmax(axis=1)
    for tr, va in splits:
        pieces = runs(va)
        for run, decoded in zip(pieces, decode([oof[r] for r in pieces], y[np.sort(tr)], cfg,
                                               device), strict=True):  # fmt: skip
            labels[run] = decoded
    return labels
