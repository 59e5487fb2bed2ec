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


def viterbi(log_emit: np.ndarray, log_trans: np.ndarray) -> np.ndarray:
    """Most likely class path for (T, K) log emission scores and a (K, K) log transition matrix."""
    T, K = log_emit.shape
    back = np.empty((T, K), dtype=np.int16 if K < 32768 else np.int32)
    score = log_emit[0].copy()
    for t in range(1, T):
        cand = score[:, None] + log_trans  # (from, to)
        back[t] = cand.argmax(axis=0)
        score = cand[back[t], np.arange(K)] + log_emit[t]
    path = np.empty(T, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def postprocess(proba: np.ndarray, train_labels: np.ndarray, cfg) -> np.ndarray:
    """Class probabilities of consecutive rows -> labels; cfg is the `post` config section."""
    proba = smooth(proba, cfg.smooth)
    if not cfg.viterbi:
        return proba.argmax(axis=1)
    log_trans, log_prior = label_statistics(train_labels, proba.shape[1])
    log_emit = np.log(np.clip(proba, 1e-8, None)) - cfg.prior_weight * log_prior
    return viterbi(log_emit, cfg.transition_weight * log_trans)


def runs(index: np.ndarray) -> list[np.ndarray]:
    """Split sorted row indices into runs of consecutive rows (each run is one sequence)."""
    index = np.sort(index)
    return [index[a:b] for a, b in row_runs(index)]


def postprocess_oof(oof: np.ndarray, y: np.ndarray, splits, cfg) -> np.ndarray:
    """Out-of-fold labels after post-processing; each fold uses its own training labels and
    decodes each run of consecutive validation rows as one sequence."""
    labels = oof.argmax(axis=1)
    for tr, va in splits:
        train_labels = y[np.sort(tr)]
        for run in runs(va):
            labels[run] = postprocess(oof[run], train_labels, cfg)
    return labels
