"""The run's recommended file: the best honest score among the network, the references and
the blend (whose score is nested); ties go to the simpler file."""

import numpy as np
import pytest

from pipeline.ensemble.compare import Candidate, candidates, recommend
from pipeline.ensemble.references import Reference


def _ref(name, score, test=True):
    return Reference(
        name, name, [score], score, 0.0, score, np.zeros(3), np.zeros(2) if test else None, 0.0
    )


@pytest.mark.parametrize(
    "greater, network, refs, blend, best",
    [
        (False, 1.0, [0.9, 1.2], 0.95, "r0.9"),  # rmse: a reference beats the blend
        (False, 1.0, [1.1], 0.8, "blend"),
        (True, 0.85, [0.84], 0.849, "network"),  # auc: the network
        (True, 0.85, [0.85], 0.85, "network"),  # a tie: the simplest file
        (False, float("nan"), [1.0], None, "r1.0"),  # a NaN score never wins
    ],
)
def test_the_recommended_file_is_the_best_honest_score(greater, network, refs, blend, best):
    references = [_ref(f"r{s}", s) for s in refs]
    entry = None if blend is None else {"nested_oof_score": blend}
    cands = candidates(network, references, entry)
    chosen = recommend(cands, greater)
    assert chosen.name == best
    expected_file = "submission_blend.csv" if best == "blend" else f"submission_{best}.csv"
    assert chosen.file == expected_file


def test_references_without_test_predictions_are_no_candidates():
    cands = candidates(1.0, [_ref("a", 0.5, test=False)], {"skipped": "too large"})
    assert cands == [Candidate("network", 1.0, "submission_network.csv")]


def test_a_reference_title_becomes_a_plain_file_name():
    (_, ref) = candidates(1.0, [_ref("mean of the training fold", 0.5)], None)
    assert ref.file == "submission_mean_of_the_training_fold.csv"
