"""notebooks/quickstart.ipynb: its shape, and one end-to-end execution on the demo competition
with a small tune (CPU, no network, no Kaggle token: the cells that need one skip themselves):
lines instead of redraws, the plots inline, the tune's submission the one submitted."""

from __future__ import annotations

import json
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
    assert 'REPO_URL = ""' in first.source and "<you>" not in first.source  # no placeholder
    source = "\n".join(code_cells(nb))
    for step in [
        'input("Paste your repository',  # the URL is pasted, not edited into the code
        '"git", "clone"',
        "%pip install",
        "--no-index --find-links {WHEELS}",  # a code competition without internet
        "torch.cuda.is_available()",
        "google.colab",
        "/kaggle/input",
        "pipeline.download",
        "pipeline.train",
        "learning_curves.png",
        "pipeline.tune",
        "optimization_history",
        "pipeline.runs",
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
    monkeypatch.setenv("FORCE_COLOR", "1")  # as a real kernel's subprocesses see it
    monkeypatch.setenv("QUICKSTART_TRAIN_ARGS", "train.epochs=2 cv.folds=2")
    monkeypatch.setenv("QUICKSTART_TUNE", "1")
    tune = "--trials 2 --top-k 2 train.epochs=2 cv.folds=2 cv.baseline=false"
    monkeypatch.setenv("QUICKSTART_TUNE_ARGS", tune)
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

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    text = "\n".join(output.get("text", "") for output in outputs)
    assert "\r" not in text and "\x1b[2K" not in text  # no live-bar redraws
    assert len(text.splitlines()) < 150  # train, tune, board and submit: readable, not a flood
    assert "demo needs no download" in text
    assert "fold 1/2: accuracy" in text and "│ mean │" in text  # the summary table is there
    images = [out for out in outputs if "image/png" in out.get("data", {})]
    assert len(images) >= 3  # learning curves and the study's plots, inline
    tune_dir = tmp_path / "tune-run"
    summary = json.loads((tune_dir / "tune.json").read_text())
    ensemble_wins = summary["ensemble"]["oof_score"] > summary["final"]["oof_score"]
    chosen = (
        tune_dir / "ensemble" / "submission.csv" if ensemble_wins else tune_dir / "submission.csv"
    )
    assert f"submission: {chosen}" in text  # the tune's best, not the first run's file
    assert "dry run:" in text and "Nothing sent" in text
    assert "tune-run" in text and "2 runs in" in text  # the board lists the train run and the tune
    submission = pd.read_csv(chosen)
    sample = pd.read_csv(tmp_path / "data" / "sample_submission.csv")
    assert list(submission.columns) == ["id", "label"] and submission["id"].equals(sample["id"])
