import itertools

import numpy as np
import pytest

from pipeline.config import PostConfig
from pipeline.run.postprocess import (
    label_statistics,
    postprocess,
    postprocess_oof,
    runs,
    smooth,
)
from pipeline.run.viterbi import viterbi


def test_viterbi_finds_the_best_path_by_brute_force():
    rng = np.random.default_rng(0)
    T, K = 6, 3
    emit, trans = rng.normal(size=(T, K)), np.log(rng.dirichlet(np.ones(K), K))

    def score(path):
        return emit[0, path[0]] + sum(
            trans[a, b] + emit[t + 1, b] for t, (a, b) in enumerate(zip(path, path[1:]))
        )

    best = max(itertools.product(range(K), repeat=T), key=score)
    assert viterbi(emit, trans).tolist() == list(best)


def test_smoothing_is_a_centred_moving_average():
    p = np.eye(3)[[0, 0, 1, 0, 0, 2, 2]].astype(float)
    out = smooth(p, 3)
    np.testing.assert_allclose(out[2], (p[1] + p[2] + p[3]) / 3)
    assert out.argmax(1).tolist() == [0, 0, 0, 0, 0, 2, 2]  # the isolated flip is gone
    assert smooth(p, 1) is p


def test_label_statistics_count_transitions_and_priors():
    log_trans, log_prior = label_statistics(np.array([0, 0, 1, 1, 1, 0]), 2)
    trans = np.exp(log_trans)
    np.testing.assert_allclose(trans.sum(1), 1.0)
    # from 1: 1->1 twice, 1->0 once, plus add-one smoothing
    np.testing.assert_allclose(trans[1], [(1 + 1) / 5, (2 + 1) / 5])
    np.testing.assert_allclose(np.exp(log_prior), [(3 + 1) / 8, (3 + 1) / 8])


def test_viterbi_with_sticky_transitions_removes_isolated_errors():
    truth = np.repeat([0, 1, 2, 1], 10)
    proba = np.full((40, 3), 0.1)
    proba[np.arange(40), truth] = 0.8
    proba[[5, 25], :] = [[0.1, 0.1, 0.8], [0.8, 0.1, 0.1]]  # two isolated wrong frames
    labels = postprocess(proba, truth, PostConfig(viterbi=True))
    assert (labels == truth).all()
    assert (proba.argmax(1) != truth).sum() == 2


def test_out_of_fold_post_processing_uses_only_the_folds_training_labels():
    rng = np.random.default_rng(1)
    y = np.repeat(rng.integers(0, 4, 30), 5)
    oof = rng.dirichlet(np.ones(4), len(y))
    splits = [(np.arange(75, 150), np.arange(0, 75)), (np.arange(0, 75), np.arange(75, 150))]
    cfg = PostConfig(viterbi=True)
    first = postprocess_oof(oof, y, splits, cfg)
    y2 = y.copy()
    y2[:75] = (y2[:75] + 1) % 4  # change fold 0's validation labels only
    again = postprocess_oof(oof, y2, splits, cfg)
    assert np.array_equal(first[:75], again[:75])  # fold 0's OOF never saw its own labels


@pytest.mark.parametrize(
    ("index", "expected"), [([3, 4, 5, 9, 10], [[3, 4, 5], [9, 10]]), ([7], [[7]])]
)
def test_runs_split_consecutive_rows(index, expected):
    assert [r.tolist() for r in runs(np.array(index))] == expected


@pytest.mark.parametrize("prior_weight", [0.0, 0.5, 1.0])
def test_prior_weight_scales_the_division_by_class_priors(prior_weight):
    rng = np.random.default_rng(2)
    train_labels = np.repeat(rng.choice(3, 40, p=[0.7, 0.2, 0.1]), 4)
    proba = rng.dirichlet(np.ones(3), 30)
    cfg = PostConfig(viterbi=True, prior_weight=prior_weight, transition_weight=0.7)
    log_trans, log_prior = label_statistics(train_labels, 3)
    emit = np.log(proba) - prior_weight * log_prior
    assert (
        postprocess(proba, train_labels, cfg).tolist() == viterbi(emit, 0.7 * log_trans).tolist()
    )


def test_dividing_by_priors_favours_rare_classes():
    """A frame the network finds slightly more likely common than rare: with the full division
    by priors the rare class wins, with prior_weight=0 the posterior's choice stays."""
    train_labels = np.array([0] * 90 + [1] * 10)
    proba = np.array([[0.55, 0.45]])
    assert postprocess(proba, train_labels, PostConfig(viterbi=True, prior_weight=1.0))[0] == 1
    assert postprocess(proba, train_labels, PostConfig(viterbi=True, prior_weight=0.0))[0] == 0
