"""pipeline.new's advice on a regression target: "rmsle?" for a positive, skewed target whose
metric it guessed, and a standardised target in the yaml where that is not the default."""

import numpy as np
import pandas as pd
import pytest

from pipeline.new import main
from pipeline.tabular.features import TabularFeatures


def _files(folder, y):
    folder.mkdir()
    n = len(y)
    pd.DataFrame({"id": range(n), "x": np.arange(n) % 7, "y": y}).to_csv(
        folder / "train.csv", index=False
    )
    pd.DataFrame({"id": range(n, n + 5), "x": range(5)}).to_csv(folder / "test.csv", index=False)
    return folder


@pytest.mark.parametrize(
    "y, metric, hinted",
    [
        (np.random.default_rng(0).lognormal(3, 1, 300), None, True),  # prices: skewed
        (np.random.default_rng(0).normal(50, 5, 300), None, False),  # symmetric
        (np.random.default_rng(0).lognormal(3, 1, 300) - 30, None, False),  # not positive
        (np.random.default_rng(0).lognormal(3, 1, 300), "mae", False),  # metric given
    ],
)
def test_a_positive_skewed_target_asks_rmsle(tmp_path, capsys, y, metric, hinted):
    folder = _files(tmp_path / "files", y)
    argv = ["s", "--data-dir", str(folder), "--out", str(folder / "competition.yaml")]
    assert main(argv + (["--metric", metric] if metric else [])) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("metric:"))
    assert ("rmsle?" in line) == hinted, line


def test_the_target_is_standardised_in_the_yaml_where_that_is_not_the_default(
    tmp_path, capsys, monkeypatch
):
    folder = _files(tmp_path / "files", np.random.default_rng(0).normal(50, 5, 300))
    argv = ["s", "--data-dir", str(folder), "--out", str(folder / "competition.yaml")]
    assert main(argv) == 0
    assert TabularFeatures().scale_target  # the default: nothing to write
    assert "scale_target" not in capsys.readouterr().out
    field = TabularFeatures.__dataclass_fields__["scale_target"]
    monkeypatch.setattr(field, "default", False)
    assert main([*argv, "--force"]) == 0
    written = (folder / "competition.yaml").read_text()
    assert "  features:\n    scale_target: true" in written
    from pipeline.tabular.spec import load_spec

    assert load_spec(folder / "competition.yaml").defaults["features"]["scale_target"] is True
