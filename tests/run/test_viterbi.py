"""Viterbi decoding in parallel pieces gives the sequential decoder's path: on strong and weak
emissions (weak ones need wider margins, which the checks must notice), several runs at once,
pieces shorter than their margins, and ties."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.run.postprocess import label_statistics
from pipeline.run.viterbi import viterbi, viterbi_runs


def sequential(log_emit: np.ndarray, log_trans: np.ndarray) -> np.ndarray:
    """The textbook decoder, one row at a time (ties: the lowest class)."""
    T, K = log_emit.shape
    back = np.empty((T, K), dtype=np.int64)
    score = log_emit[0].copy()
    for t in range(1, T):
        cand = score[:, None] + log_trans
        back[t] = cand.argmax(axis=0)
        score = cand[back[t], np.arange(K)] + log_emit[t]
    path = np.empty(T, dtype=np.int64)
    path[-1] = int(score.argmax())
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return path


def _transitions(K: int, rng) -> np.ndarray:
    labels = np.repeat(rng.integers(0, K, 400), rng.integers(1, 12, 400))  # phone-like runs
    return label_statistics(labels, K)[0]


@pytest.mark.parametrize("concentration", [0.2, 2.0, 50.0])  # 50: nearly flat emissions
def test_pieces_give_the_sequential_path(concentration):
    rng = np.random.default_rng(0)
    K = 7
    trans = _transitions(K, rng)
    emits = [np.log(rng.dirichlet(np.ones(K) * concentration, size=n)) for n in (3000, 1, 257)]
    got = viterbi_runs(emits, trans, piece=100, margin=4)
    for emit, path in zip(emits, got, strict=True):
        np.testing.assert_array_equal(path, sequential(emit, trans))


def test_flat_emissions_fall_back_to_the_whole_sequence():
    """Equal emissions everywhere leave every piece undecided: the margins grow until the
    pieces are the sequence, and the answer is still the sequential one (ties included)."""
    K, T = 4, 300
    trans = np.log(np.full((K, K), 1 / K))
    emit = np.zeros((T, K))
    np.testing.assert_array_equal(viterbi_runs([emit], trans, piece=16, margin=2)[0],
                                  sequential(emit, trans))  # fmt: skip
    np.testing.assert_array_equal(viterbi(emit, trans), np.zeros(T, dtype=np.int64))
