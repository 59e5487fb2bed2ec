"""A competition from one competition.yaml: column types, codes, labels, per-fold encoders,
and the bad inputs of a CSV competition, each one line and exit 2."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from pipeline.competition.catalog import load_competition
from pipeline.config import build_config
from pipeline.errors import UserError
from pipeline.train import main as train_main


def write_files(folder, n=120, yaml="metric: accuracy\n", seed=0, mutate=None):
    rng = np.random.default_rng(seed)
    label = rng.choice(["cat", "dog", "emu"], n)
    frame = pd.DataFrame(
        {
            "key": [f"r{i:04d}" for i in range(n)],
            "colour": rng.choice(["red", "green", "blue", None], n),
            "size": rng.normal(size=n) + (label == "dog") * 2.0,
            "legs": rng.integers(2, 5, n),
            "flag": rng.choice([True, False], n),
            "animal": label,
        }
    )
    frame.loc[::9, "size"] = np.nan
    train, test = frame.iloc[: n * 3 // 4].copy(), frame.iloc[n * 3 // 4 :].copy()
    test.loc[test.index[0], "colour"] = "violet"  # a category the train file never holds
    sample = test[["key"]].assign(animal="cat")
    if mutate:
        train, test, sample = mutate(train, test, sample)
    folder.mkdir(parents=True, exist_ok=True)
    train.to_csv(folder / "train.csv", index=False)
    test.drop(columns="animal", errors="ignore").to_csv(folder / "test.csv", index=False)
    sample.to_csv(folder / "sample_submission.csv", index=False)
    (folder / "competition.yaml").write_text(
        "train: train.csv\ntest: test.csv\nsample_submission: sample_submission.csv\n" + yaml
    )
    return folder / "competition.yaml"


def loaded(path):
    competition = load_competition(str(path))
    competition.prepare_data(path.parent)
    return competition


def fitted(folder, features: str = "", rows: int | None = None):
    """(train data, model config, a preprocessor fitted on the first `rows` rows) of a zoo
    competition whose yaml sets the given features: lines."""
    yaml = "metric: accuracy\n" + (f"defaults:\n  features:\n{features}" if features else "")
    path = write_files(folder, yaml=yaml)
    competition = loaded(path)
    train = competition.load_train(path.parent)
    cfg = build_config(competition.features_cls(), [("yaml", competition.defaults())], [])
    pre = competition.make_preprocessor(cfg, train).fit(train.X[:rows], train.y[:rows])
    return train, cfg, pre


def test_types_codes_and_labels(tmp_path):
    path = write_files(tmp_path / "zoo", yaml="metric: accuracy\ncategorical: [legs]\n")
    competition = loaded(path)
    train = competition.load_train(path.parent)
    assert competition.name == "zoo" and competition.id_column == "key"
    assert competition.target_column == "animal"
    assert competition.classes == ["cat", "dog", "emu"] and competition.task.n_classes == 3
    assert train.feature_names == ["colour", "size", "legs", "flag"]
    assert train.categorical.tolist() == [True, False, True, True]
    layout = competition.layout
    assert layout.categories["colour"] == ["blue", "green", "red", "violet"]
    assert layout.categories["legs"] == ["2", "3", "4"]
    assert layout.categories["flag"] == ["False", "True"]
    assert np.isnan(train.X[:, 0]).any() and np.isnan(train.X[::9, 1]).all()
    assert train.y.dtype == np.int64 and set(train.y) == {0, 1, 2}
    test = competition.load_test(path.parent)
    assert test.X[0, 0] == 3.0  # violet: a code, not an error


def test_preprocessor_fitted_per_fold_with_equal_widths(tmp_path):
    train, _, pre = fitted(tmp_path / "zoo", rows=40)
    out = pre.transform(train.X)
    assert np.isfinite(out).all() and out.dtype == np.float32
    # size: 1 scaled column + 1 missing indicator; colour/legs/flag one-hot (rare -> one column)
    assert out.shape[0] == len(train.X) and out.shape[1] >= 4
    pre.pad_to(out.shape[1] + 3)
    wide = pre.transform(train.X)
    assert wide.shape[1] == out.shape[1] + 3 and not wide[:, out.shape[1] :].any()
    assert np.array_equal(wide[:, : out.shape[1]], out)


def test_target_encoder_cross_fits_training_rows(tmp_path):
    train, _, pre = fitted(tmp_path / "zoo", "    encode: target\n")
    on_train = pre.transform(train.X)
    encoder = pre.features.named_steps["columns"].named_transformers_["target"]
    plain = super(type(encoder["encode"]), encoder["encode"]).transform(
        encoder["fill"].transform(train.X[:, train.categorical])
    )
    assert not np.allclose(on_train[:, -plain.shape[1] :], plain)  # cross-fitted, not refitted


def test_train_end_to_end_from_yaml(tmp_path):
    path = write_files(tmp_path / "zoo")
    out = tmp_path / "run"
    code = train_main([str(path), "--out", str(out), "--quiet", "train.epochs=3", "cv.folds=3"])
    assert code == 0
    assert (out / "submission.csv").is_file() and (out / "metrics.json").is_file()


BAD = [
    ("metric: nonsense\n", None, "nonsense"),
    ("metric: accuracy\nfolder: x\n", None, "unknown key 'folder'"),
    ("metric: accuracy\ntarget: species\n", None, "no column 'species'"),
    ("metric: accuracy\nid: idx\n", None, "no column 'idx'"),
    (
        "metric: accuracy\n",
        lambda tr, te, s: (tr.assign(animal=tr.animal.where(tr.index != 5)), te, s),
        "line 7: the target 'animal' is missing",
    ),
    (
        "metric: accuracy\n",
        lambda tr, te, s: (
            tr,
            te.assign(size=te["size"].astype(object).where(te.index != 100, "big")),
            s,
        ),
        "'big'",
    ),
    (
        "metric: accuracy\n",
        lambda tr, te, s: (tr.assign(size=tr["size"].where(tr.index != 3, 1e300)), te, s),
        "beyond the float32 range",
    ),
    ("metric: accuracy\ntask: regression\n", None, "holds text"),
    (
        "metric: logloss\n",
        lambda tr, te, s: (tr, te, s[["key"]].assign(cat=0.5, dog=0.3, yak=0.2)),
        "yak",
    ),
    (
        "metric: accuracy\n",
        lambda tr, te, s: (tr, te, s[["key"]].assign(foo=1, bar=2)),
        "match neither",
    ),
    (
        "metric: accuracy\npositive: yak\ntask: multiclass\n",
        None,
        "positive: applies to a binary task; the target 'animal' has 3 classes",
    ),
    (
        "metric: accuracy\npositive: yak\n",
        lambda tr, te, s: (tr.assign(animal=tr.animal.where(tr.animal == "cat", "dog")), te, s),
        "'yak' is not a class",
    ),
    # each column in one role, with the right reason (not "test.csv has no column 'animal'")
    ("metric: accuracy\nid: key\ntarget: key\n", None, "id and target both name the column"),
    ("metric: accuracy\ndrop: [animal]\n", None, "drop: lists 'animal', the target column"),
    ("metric: accuracy\ndrop: [key]\n", None, "drop: lists 'key', the id column"),
    (
        "metric: accuracy\ncategorical: [animal]\n",
        None,
        "categorical: lists 'animal', the target column",
    ),
    # what the references need, checked before the network trains
    (
        "metric: accuracy\n",
        lambda tr, te, s: (tr.assign(animal=np.where(tr.index == 7, "dog", "cat")), te, s),
        "train.csv: fold 1 of 5 trains on one class only ('cat'); class 'dog' has 1 row(s)",
    ),
    (
        "metric: accuracy\n",
        lambda tr, te, s: (tr.assign(colour=None, size=np.nan, legs=np.nan, flag=None), te, s),
        "train.csv: every feature column is empty (colour, size, legs, flag)",
    ),
    # a classification metric on a regression target: the metric is named, not the sample
    (
        "metric: auc\n",
        lambda tr, te, s: (tr.assign(animal=tr["legs"] * 1.37), te, s.assign(animal=0.5)),
        "metric auc scores classes, but the target 'animal' holds fractional numbers",
    ),
]


@pytest.mark.parametrize("yaml, mutate, message", BAD)
def test_bad_input_is_one_line(tmp_path, capsys, yaml, mutate, message):
    path = write_files(tmp_path / "zoo", yaml=yaml, mutate=mutate)
    out = tmp_path / "run"
    code = train_main([str(path), "--out", str(out), "--quiet", "train.epochs=2"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_missing_yaml_and_found_by_folder(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        load_competition(str(tmp_path / "none" / "competition.yaml"))
    path = write_files(tmp_path / "zoo")
    assert load_competition(str(path.parent)).name == "zoo"


def test_high_cardinality_columns_can_be_embedded(tmp_path):
    from pipeline.model.models import EmbeddingInput, build_model

    train, cfg, pre = fitted(
        tmp_path / "zoo", "    high_cardinality: embed\n    max_onehot: 3\n", rows=60
    )
    assert [n for n, _ in pre.embed] == [4 + 2]  # colour: 4 categories + unknown + rare
    out = pre.transform(train.X)
    codes = out[:, -1]
    assert set(np.unique(codes)) <= set(range(6)) and codes.min() >= 0
    pre.pad_to(out.shape[1] + 2)  # padding goes before the code column
    assert np.array_equal(pre.transform(train.X)[:, -1], codes)
    model = build_model(cfg.model, pre.n_features_out_, 3, embed=pre.embed)
    assert isinstance(model, EmbeddingInput)
    import torch

    x = torch.from_numpy(pre.transform(train.X[:5]))
    assert model.eval()(x).shape == (5, 3)  # the members' mean
    assert model.train()(x).shape == (5, cfg.model.k, 3)  # a CSV's default: each member


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("categorical: abc\n", "categorical must be a list of strings; got 'abc'"),
        ("task: foo\n", "task must be one of: auto, regression, binary, multiclass; got 'foo'"),
        ("metric: Nonsense\n", "metric must be one of: rmse, .* or null; got 'Nonsense'"),
        ("defaults: [1]\n", "defaults must be a mapping; got \\[1\\]"),
    ],
)
def test_competition_yaml_is_checked_by_the_config_type_hints(tmp_path, text, message):
    from pipeline.errors import ConfigError
    from pipeline.tabular.spec import load_spec

    (tmp_path / "competition.yaml").write_text(text)
    with pytest.raises(ConfigError, match=f"competition.yaml: {message}"):
        load_spec(tmp_path / "competition.yaml")
    (tmp_path / "competition.yaml").write_text("metric: AUC\ntarget: 2020\nslug: null\n")
    spec = load_spec(tmp_path / "competition.yaml")
    assert (spec.metric, spec.target, spec.slug) == ("auc", "2020", None)  # a year-named column


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("name: ../../escape\n", r"name must be a plain folder name .*got '\.\./\.\./escape'"),
        ("name: a/b\n", r"name must be a plain folder name"),
        ("name: .hidden\n", r"name must be a plain folder name"),
        ("slug: ../../x\n", r"slug must be a plain folder name"),
    ],
)
def test_names_from_the_yaml_never_leave_the_runs_folder(
    tmp_path, monkeypatch, capsys, line, message
):
    """No --out: the run would go to runs/<name>/<time>/; a name that is a path is refused
    before anything is written, anywhere."""
    path = write_files(tmp_path / "a" / "b" / "zoo", yaml="metric: accuracy\n" + line)
    monkeypatch.chdir(tmp_path / "a" / "b")
    before = sorted(p for p in tmp_path.rglob("*"))
    code = train_main([str(path), "--quiet", "train.epochs=1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and re.search(message, err), err
    assert sorted(p for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("where", ["train", "both"])
def test_an_all_empty_column_trains_with_the_references(tmp_path, capsys, where):
    """scikit-learn's HistGradientBoosting cannot bin a column without a value; the reference
    takes it as a constant, and the run ends with its scores instead of a traceback after the
    network has trained. A column empty in train and text in test is no contradiction."""
    import json

    def mutate(tr, te, s):
        tr = tr.assign(size=np.nan, colour=None)
        te = te.assign(size=np.nan) if where == "both" else te
        return tr, te, s

    path = write_files(tmp_path / "zoo", mutate=mutate)
    out = tmp_path / "run"
    argv = [str(path), "--out", str(out), "--quiet", "train.epochs=1", "cv.folds=2"]
    assert train_main(argv) == 0, capsys.readouterr().err
    names = [r["name"] for r in json.loads((out / "metrics.json").read_text())["references"]]
    assert names == ["logistic_regression", "hist_gradient_boosting", "lightgbm"]
