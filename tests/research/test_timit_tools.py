"""The TIMIT measuring commands: research.timit.ingredients and research.timit.epoch_time."""

import json

import numpy as np
import pandas as pd

from competitions.timit.generate import generate
from research.timit import epoch_time, ingredients


def test_ingredients_scores_the_saved_probabilities_raw_and_decoded(tmp_path, capsys):
    data = tmp_path / "data"
    generate(data, train_rows=3000, test_rows=400, seed=3)
    answers = np.random.default_rng(0).integers(0, 39, 400)  # an answers file, as synth writes
    pd.DataFrame({"Id": range(400), "Class": answers}).to_csv(data / "answers.csv", index=False)
    out = tmp_path / "runs"
    argv = [
        str(data),
        "--recipes",
        "conv",
        "--out",
        str(out),
        "--grid",
        "cv.folds=2",
        "train.epochs=1",
        "train.patience=0",
        "model.channels=8",
        "model.hidden=[16]",
    ]
    assert ingredients.main(argv) == 0
    text = capsys.readouterr().out
    metrics = json.loads((out / "conv" / "metrics.json").read_text())
    assert f"raw {metrics['oof_score']:.3f} / " in text  # the raw OOF is the run's own score
    test = np.load(out / "conv" / "test_proba.npy").argmax(1)
    assert f"{np.mean(test == answers):.3f} |" in text.split("| conv over")[1]
    assert "conv: best (" in text and "OOF / unseen-speaker test" in text
    # --reuse scores the saved run again without training
    assert ingredients.main([*argv, "--reuse"]) == 0
    assert f"raw {metrics['oof_score']:.3f}" in capsys.readouterr().out


def test_epoch_time_reports_seconds_per_epoch_and_memory(tmp_path, capsys):
    generate(tmp_path, train_rows=2000, test_rows=100, seed=4)
    argv = [
        str(tmp_path),
        "--rows",
        "1500",
        "--folds",
        "2",
        "--epochs",
        "1",
        "model.channels=8",
        "model.hidden=[8]",
    ]
    assert epoch_time.main(argv) == 0
    text = capsys.readouterr().out
    assert "seq on 1,500 rows, 2 folds, 1 epochs" in text
    assert text.count("s per epoch (1 epochs)") == 2 and "engine plain" in text
    assert "peak RSS" in text
    assert epoch_time.main([str(tmp_path / "missing")]) == 2
    assert "scripts/download.sh timit" in capsys.readouterr().err
