"""Opening a study: the worker that creates it and the ones that resume it get their sampler and
their --pruner on the steps the study was created with."""

import pytest

from pipeline.competition.catalog import load_competition
from pipeline.errors import UserError
from pipeline.run.inputs import resolve_config
from pipeline.tune.pruners import Pruning, list_pruners, make_pruner
from pipeline.tune.storage import default_url, open_storage
from pipeline.tune.study import open_study


@pytest.fixture
def opened(demo, tmp_path):
    storage = open_storage(default_url(tmp_path), heartbeat=10)
    cfg = resolve_config(demo, None, [])

    def open_with(kind: str, stride: int, competition=demo):
        return open_study(storage, "demo", competition, cfg, stride, Pruning(kind=kind), seed=0)

    return open_with, cfg


@pytest.mark.parametrize("kind", list_pruners())
def test_every_pruner_is_used_when_a_study_is_created_and_when_it_is_resumed(kind, opened):
    open_with, cfg = opened
    study, stride = open_with(kind, 40)
    expected = type(make_pruner(Pruning(kind=kind), 40, cfg.cv.folds))
    assert stride == 40 and type(study.pruner) is expected
    assert study.user_attrs["stride"] == 40
    resumed, stride = open_with(kind, 20)  # a worker whose train.epochs is smaller
    assert stride == 40  # steps stay numbered as the study was created
    assert type(resumed.pruner) is expected
    if kind == "median":
        assert resumed.pruner.stride == 40


def test_a_worker_resumes_with_its_own_pruner(opened):
    open_with, _ = opened
    open_with("median", 40)
    resumed, _ = open_with("wilcoxon", 40)
    assert type(resumed.pruner).__name__ == "FoldWilcoxonPruner"


@pytest.mark.parametrize(
    ("competition", "stride", "message"),
    [
        ("covid", 40, r"created to maximize its metric; this competition's metric must minimize"),
        ("demo", 80, r"train.epochs up to 80 is more than the 40 epochs per fold study 'demo'"),
    ],
)
def test_a_study_another_worker_cannot_join_is_refused(competition, stride, message, opened):
    open_with, _ = opened
    open_with("median", 40)
    with pytest.raises(UserError, match=message):
        open_with("median", stride, competition=load_competition(competition))
