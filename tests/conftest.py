"""Shared fixtures: the real COVID files from ../shared, the demo files, shrunken configs."""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

from pipeline.competition.catalog import load_competition
from pipeline.run.inputs import resolve_config

ROOT = Path(__file__).resolve().parents[1]
COVID_DIR = ROOT.parent / "shared" / "data" / "ml2021spring-hw1"


@pytest.fixture(scope="session")
def covid_dir() -> Path:
    if not (COVID_DIR / "covid.train.csv").is_file():
        pytest.skip(f"the real COVID files are not at {COVID_DIR}")
    return COVID_DIR


@pytest.fixture
def covid_copy(covid_dir, tmp_path) -> Path:
    """A writable copy of the COVID files, for tests that damage them."""
    target = tmp_path / "covid"
    shutil.copytree(covid_dir, target)
    return target


@pytest.fixture(scope="session")
def covid():
    return load_competition("covid")


@pytest.fixture(scope="session")
def demo():
    return load_competition("demo")


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory, demo) -> Path:
    path = tmp_path_factory.mktemp("demo")
    demo.prepare_data(path)
    return path


@pytest.fixture(scope="session")
def small_timit(tmp_path_factory):
    """(timit competition, TrainData) of 3,000 generated rows."""
    from competitions.timit.generate import generate

    path = tmp_path_factory.mktemp("timit-small")
    generate(path, train_rows=3000, test_rows=500, seed=0)
    competition = load_competition("timit")
    return competition, competition.load_train(path)


def small_config(competition, *overrides: str):
    """The competition's defaults with a trainer shrunk for tests."""
    quick = ["train.epochs=4", "train.patience=2", "cv.baseline=false"]
    return resolve_config(competition, None, [*quick, *overrides])


def use_fake_kaggle(monkeypatch, home: Path, fake, key: str):
    """Put `fake` behind kaggle_io.get_api, with credentials in the environment only (a fresh
    HOME, no other KAGGLE_* variables)."""
    from pipeline.kaggle import client as kaggle_io

    monkeypatch.setenv("HOME", str(home / "home"))
    for name in list(os.environ):
        if name.startswith("KAGGLE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KAGGLE_USERNAME", "tester")
    monkeypatch.setenv("KAGGLE_KEY", key)
    monkeypatch.setattr(kaggle_io, "get_api", lambda: fake)
    return fake


def fake_kaggle_fixture(monkeypatch, home: Path, fake, key: str):
    """use_fake_kaggle for a yield fixture: the fake's hung calls are released at teardown."""
    yield use_fake_kaggle(monkeypatch, home, fake, key)
    fake.hang.set()


@contextlib.contextmanager
def registered(table, name, entry, **info):
    """`entry` in `table` for the duration of a test (registries are process-wide)."""
    table.register(name, entry, **info)
    try:
        yield entry
    finally:
        table.unregister(name)


def assert_stack_computes_its_models(stacked, models, x) -> None:
    """The stack of K models gives, in training and in eval mode, what each model gives on its
    own slice x[k]; unstacking gives the models' parameters and buffers back (running
    statistics included)."""
    import torch

    for training in (True, False):
        stacked.train(training)
        for m in models:
            m.train(training)
        expected = torch.stack([m(x[k]) for k, m in enumerate(models)])
        assert torch.allclose(stacked(x), expected, atol=1e-5)
    for back, model in zip(stacked.unstack(), models, strict=True):
        for key, value in model.state_dict().items():
            assert torch.allclose(back.state_dict()[key].float(), value.float()), key
