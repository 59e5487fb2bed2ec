"""notebooks/quickstart.ipynb: its shape, and one end-to-end execution on the demo competition
(CPU, no network, no Kaggle token: the cells that need one skip themselves)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "quickstart.ipynb"


def code_cells(nb) -> list[str]:
    return [cell.source for cell in nb.cells if cell.cell_type == "code"]


def test_the_notebook_is_parametrized_and_covers_every_step():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    first = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert "parameters" in first.metadata.get("tags", [])
    assert 'COMPETITION = "demo"' in first.source
    assert 'REPO_URL = "https://github.com/<you>/<repo>"' in first.source
    source = "\n".join(code_cells(nb))
    for step in [
        '"git", "clone"',
        "%pip install",
        "google.colab",
        "/kaggle/input",
        "pipeline.download",
        "pipeline.train",
        "pipeline.tune",
        "pipeline.submit",
    ]:
        assert step in source, step
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


@pytest.mark.slow
def test_the_notebook_runs_end_to_end_on_demo(tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    for name in list(os.environ):
        if name.startswith("KAGGLE_"):
            monkeypatch.delenv(name)
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no kaggle.json either
    monkeypatch.setenv("QUICKSTART_OFFLINE", "1")
    monkeypatch.setenv(
        "QUICKSTART_TRAIN_ARGS", "train.epochs=2 cv.folds=2 cv.baseline=false --quiet"
    )
    monkeypatch.setenv("QUICKSTART_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("QUICKSTART_OUT_DIR", str(tmp_path / "run"))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    )
    client.execute()

    text = "\n".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert "demo needs no download" in text
    assert "accuracy:" in text and "over 2 folds" in text
    assert "dry run:" in text and "Nothing sent" in text
    assert "Tuning skipped" in text
    submission = pd.read_csv(tmp_path / "run" / "submission.csv")
    sample = pd.read_csv(tmp_path / "data" / "sample_submission.csv")
    assert list(submission.columns) == ["id", "label"] and submission["id"].equals(sample["id"])
