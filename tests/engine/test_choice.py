"""The engine choice: one decision before training, from the fitted preprocessing itself, with a
reason for every refusal; non-finite inputs as a data error; no import circles."""

import ast
import importlib
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.decomposition import PCA
from sklearn.pipeline import Pipeline

from pipeline.competition.preprocess import Preprocessor
from pipeline.engine.choice import choose_engine
from pipeline.engine.cv import CrossValidator
from pipeline.errors import ConfigError
from pipeline.model.models import build_model
from pipeline.tabular.features import TabularFeatures, tabular_preprocessor
from pipeline.train import main as train_main
from tests.conftest import small_config

ROOT = Path(__file__).resolve().parents[2]

PLUGIN = '''
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.competition.base import Competition, TestData, TrainData
from pipeline.model.metrics import Task
from pipeline.tabular.features import TabularFeatures, tabular_preprocessor

COLUMNS = ["year", "income", "x2", "x3"]


class Plain(Competition):
    """A user's plug-in that reads its CSV files without checking them."""

    name = "rawtab"
    task = Task("regression")
    metric_name = "rmse"
    features_cls = TabularFeatures
    needs_download = False

    def load_train(self, data_dir):
        frame = pd.read_csv(Path(data_dir) / "train.csv")
        return TrainData(frame[COLUMNS].to_numpy(np.float32), frame["y"].to_numpy(np.float32),
                         frame["id"].to_numpy(), feature_names=COLUMNS, source="train.csv")

    def load_test(self, data_dir):
        frame = pd.read_csv(Path(data_dir) / "test.csv")
        return TestData(frame[COLUMNS].to_numpy(np.float32), frame["id"].to_numpy(),
                        source="test.csv")

    def make_preprocessor(self, cfg, train):
        return tabular_preprocessor(cfg.features, "regression", len(COLUMNS))


competition = Plain()
'''


def _table(n: int, seed: int = 0) -> pd.DataFrame:
    """Raw-scale numeric columns: a year (mean ~2,000, sd ~2) and money in the thousands."""
    rng = np.random.default_rng(seed)
    year = rng.normal(2000, 2, n).round()
    income = rng.normal(45_000, 12_000, n).round(2)
    x2, x3 = rng.normal(size=(2, n))
    y = 0.3 * (year - 2000) + (income - 45_000) / 12_000 + x2 + 0.1 * rng.normal(size=n)
    return pd.DataFrame(
        {"id": np.arange(n), "year": year, "income": income, "x2": x2, "x3": x3, "y": y}
    )


@pytest.fixture
def rawtab(tmp_path, monkeypatch):
    """(competition name, data folder) of a 2,000-row numeric table behind a user plug-in."""
    package = tmp_path / "plugins" / "userplugs"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "rawtab.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path / "plugins"))
    data = tmp_path / "data"
    data.mkdir()
    _table(2000).to_csv(data / "train.csv", index=False)
    _table(300, seed=1).drop(columns="y").to_csv(data / "test.csv", index=False)
    return "userplugs.rawtab", data


@pytest.mark.parametrize(
    "features",
    [
        TabularFeatures(select="all", scale="standard"),
        TabularFeatures(select="all", scale="minmax"),
        TabularFeatures(select="all", scale="robust"),
        TabularFeatures(select="kbest", k=2, scale="standard"),
        TabularFeatures(select="all", scale="none"),
    ],
)
def test_the_affine_map_is_read_from_the_fitted_parameters(features):
    frame = _table(500)
    X = frame[["year", "income", "x2", "x3"]].to_numpy(np.float32)
    pre = tabular_preprocessor(features, "regression", 4).fit(X, frame["y"].to_numpy(np.float32))
    m = pre.affine()
    got = (X[:, m.columns].astype(np.float64) - m.center) * m.mult
    X64 = X.astype(np.float64)  # scikit-learn in float64: the exact reference
    exact = X64 if pre.features is None else pre.features.transform(X64)
    np.testing.assert_allclose(got, exact, rtol=1e-9, atol=1e-9)
    # on the device, in float32 and centred first: as close as scikit-learn's own float32
    device = (X[:, m.columns] - m.center.astype(np.float32)) * m.mult.astype(np.float32)
    assert np.abs(device - exact).max() <= np.abs(pre.transform(X) - exact).max() + 1e-6


def test_a_preprocessing_that_mixes_columns_has_no_affine_map_and_runs_on_host_inputs():
    X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    pres = [Preprocessor(Pipeline([("pca", PCA(2))])).fit(X, X[:, 0]) for _ in range(2)]
    assert pres[0].affine() is None
    cfg = small_config(_demo(), "train.engine=auto")
    models = [build_model(cfg.model, 2, 10) for _ in pres]
    choice = choose_engine(cfg, pres, models, n_rows=60, budget=1 << 20)
    assert choice.engine == "fast" and choice.maps is None  # transformed on the host per fold
    small = choose_engine(cfg, pres, models, n_rows=60, budget=100)
    assert small.engine == "plain" and "memory budget" in small.reason


@pytest.mark.parametrize(
    ("accelerator", "cuda", "device"),
    [
        ("cpu", True, "cpu"),
        ("auto", True, "cuda"),
        ("gpu", True, "cuda"),
        ("auto", False, "cpu"),
        ("mps", True, "cpu"),
    ],
)
def test_the_memory_budget_is_the_one_of_the_device_the_run_trains_on(
    accelerator, cuda, device, monkeypatch
):
    """train.accelerator=cpu on a CUDA machine: the host inputs are budgeted in RAM."""
    import torch

    from pipeline.engine import choice

    X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    pres = [Preprocessor(Pipeline([("pca", PCA(2))])).fit(X, X[:, 0]) for _ in range(2)]
    cfg = small_config(_demo(), "train.engine=auto", f"train.accelerator={accelerator}")
    models = [build_model(cfg.model, 2, 10) for _ in pres]
    asked = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(choice, "memory_budget", lambda d: asked.append(d.type) or 1 << 20)
    assert choose_engine(cfg, pres, models, n_rows=60).engine == "fast"
    assert asked == [device]


def _demo():
    from pipeline.competition.catalog import load_competition

    return load_competition("demo")


def test_raw_scale_columns_standardised_train_on_the_fast_engine(rawtab):
    name, data = rawtab
    from pipeline.competition.catalog import load_competition

    competition = load_competition(name)
    cfg = small_config(competition, "train.epochs=2")
    cv = CrossValidator(competition, cfg, progress=False).fit(competition.load_train(data))
    assert cv.engine_ == "fast" and cv.engine_note_ is None
    assert np.isfinite(cv.fold_scores_).all()


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (["sched.name=plateau"], "sched.name=plateau"),
        (["train.devices=2"], "several devices"),
        (["model.name=gru", "model.channels=4", "model.hidden=[8]"], "model.name=gru"),
    ],
)
def test_each_reason_the_fast_engine_is_refused(overrides, reason, small_timit):
    competition, train = small_timit
    train.X, train.y, train.ids = train.X[:600], train.y[:600], train.ids[:600]
    auto = small_config(competition, "train.epochs=1", "cv.folds=2", *overrides)
    if "train.devices=2" not in overrides:  # two devices cannot really train here
        cv = CrossValidator(competition, auto, progress=False).fit(train)
        assert cv.engine_ == "plain" and reason in cv.engine_note_
    fast = small_config(
        competition, "train.engine=fast", "train.epochs=1", "cv.folds=2", *overrides
    )
    with pytest.raises(ConfigError, match=f"{reason}.*use train.engine=plain"):
        CrossValidator(competition, fast, progress=False).fit(train)


def test_compile_with_a_config_the_fast_engine_cannot_train_is_refused(demo, demo_dir):
    cfg = small_config(demo, "sched.name=plateau", "train.compile=default")
    with pytest.raises(ConfigError, match="train.compile=none"):
        CrossValidator(demo, cfg, progress=False).fit(demo.load_train(demo_dir))


@pytest.mark.parametrize("engine", ["fast", "plain"])
def test_nan_below_row_256_is_a_data_error_naming_the_column(engine, rawtab, tmp_path, capsys):
    name, data = rawtab
    frame = pd.read_csv(data / "train.csv")
    frame.loc[999, "x3"] = np.nan  # data row 1,000 of 2,000
    frame.to_csv(data / "train.csv", index=False)
    out = tmp_path / "run"
    code = train_main(
        [
            name,
            "--data-dir",
            str(data),
            "--out",
            str(out),
            "--quiet",
            f"train.engine={engine}",
            "train.epochs=2",
            "cv.baseline=false",
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "train.csv: column 'x3'" in err and "1 of 2,000 rows" in err and "line 1,001" in err
    assert "optim.lr" not in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())


def test_nan_in_the_test_file_is_found_before_training(rawtab, tmp_path, capsys):
    name, data = rawtab
    frame = pd.read_csv(data / "test.csv")
    frame.loc[[10, 20], "income"] = np.inf
    frame.to_csv(data / "test.csv", index=False)
    code = train_main([name, "--data-dir", str(data), "--out", str(tmp_path / "r"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "test.csv: column 'income'" in err and "2 of 300 rows" in err


def _modules() -> list[str]:
    return sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "pipeline").rglob("*.py")
    )


def _imports(module: str) -> set[str]:
    """pipeline modules `module` imports anywhere in its file (top level or inside functions)."""
    path = ROOT / Path(*module.split("."))
    path = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n in _modules() or n.split(".")[0] == "competitions"}
    return found


def test_the_engine_has_no_import_circle_and_names_no_competition():
    graph = {m: _imports(m) - {m} for m in _modules()}
    for module, targets in graph.items():
        plugins = [t for t in targets if t.startswith("competitions.")]
        assert not plugins, f"{module} imports the plug-in(s) {plugins}"
    done, active = set(), []

    def visit(m):
        assert m not in active, f"import circle: {' -> '.join([*active[active.index(m) :], m])}"
        if m in done:
            return
        active.append(m)
        for t in graph.get(m, ()):
            if t in graph and t != "pipeline":
                visit(t)
        active.pop()
        done.add(m)

    for m in graph:
        visit(m)


def test_every_module_imports_on_its_own():
    code = textwrap.dedent("""
        import importlib, sys
        failed = []
        for name in sys.argv[1:]:
            for loaded in [m for m in sys.modules if m.split('.')[0] in ('pipeline', 'competitions')]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as exc:
                failed.append(f'{name}: {exc!r}')
        print('\\n'.join(failed))
        sys.exit(1 if failed else 0)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code, *_modules()],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert importlib.import_module("pipeline.engine.cv")
