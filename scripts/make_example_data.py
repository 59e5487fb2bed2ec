"""Rebuild the example CSV competitions under tests/data/ from their published files.

Maintainer script, not part of the pipeline. Get the sources (pip is the only network needed):

    pip download --no-deps palmerpenguins==0.1.6 ISLP==0.6.0 -d /tmp/wheels
    SK=$(python -c 'import sklearn, os; print(os.path.dirname(sklearn.__file__))')
    python scripts/make_example_data.py \
        --penguins /tmp/wheels/palmerpenguins-0.1.6-py3-none-any.whl \
        --wage /tmp/wheels/islp-0.6.0-py3-none-any.whl \
        --titanic $SK/datasets/tests/data/openml/id_40945/data-v1-dl-16826755.arff.gz
    python scripts/make_example_data.py --score      # the reference scores quoted in SOURCE.md

Each set given is rewritten: train.csv, test.csv, sample_submission.csv, solution.csv and
competition.yaml (SOURCE.md and README.md are written by hand and left alone). Every cell is
read and written as the source's own text, so values are byte-for-byte the published ones; the
only change is that missing cells ("NA" in penguins, "?" in the ARFF) become empty cells.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data"
TEST_SIZE = 0.25
SEED = 0

# name: where the table lives, the target, the metric, what is dropped, how ids look, the
# constant a sample submission holds (None: the most frequent train class), the positive class.
SETS = {
    "penguins": dict(
        member="palmerpenguins/data/penguins.csv",
        missing="NA",
        target="species",
        metric="accuracy",
        stratify=True,
        drop=[],
        id_format="{}",
        sample=None,
        positive="null",
    ),
    "wage": dict(
        member="ISLP/data/Wage.csv",
        missing=None,
        target="wage",
        metric="rmse",
        stratify=False,
        drop=["logwage"],
        id_format="{}",
        sample="mean",
        positive="null",
    ),
    "titanic": dict(
        member=None,
        missing="?",
        target="survived",
        metric="auc",
        stratify=True,
        drop=["boat", "body"],
        id_format="P{:04d}",
        sample="0.5",
        positive="1",
    ),
}

YAML = """\
name: {name}
slug: null
train: train.csv
test: test.csv
sample_submission: sample_submission.csv
id: id
target: {target}
task: auto
metric: {metric}
positive: {positive}
categorical: []
drop: []
"""


def read_wheel_csv(wheel: Path, member: str) -> pd.DataFrame:
    with zipfile.ZipFile(wheel) as zf:
        text = zf.read(member).decode("utf-8")
    return pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)


def read_arff(path: Path) -> pd.DataFrame:
    """The OpenML titanic ARFF: quoted strings, '?' for missing, no escapes or sparse rows."""
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    names, rows, in_data = [], [], False
    for line in lines:
        if in_data:
            if line.strip() and not line.startswith("%"):
                rows.append(line)
        elif line.lower().startswith("@attribute"):
            names.append(line.split()[1].strip("'\""))
        elif line.lower().startswith("@data"):
            in_data = True
    # csv drops the quotes, so a quoted '?' would read as missing; the file has none.
    table = list(csv.reader(rows, quotechar='"', skipinitialspace=False))
    if any(len(r) != len(names) for r in table):
        raise ValueError(f"{path}: a data row does not have {len(names)} fields")
    return pd.DataFrame(table, columns=names, dtype=str)


def build(name: str, raw: pd.DataFrame, out: Path) -> None:
    spec = SETS[name]
    target = spec["target"]
    if spec["missing"] is not None:
        raw = raw.replace(spec["missing"], "")
    raw = raw.drop(columns=spec["drop"])
    features = [c for c in raw.columns if c != target]
    ids = [spec["id_format"].format(i + 1) for i in range(len(raw))]  # source row number
    raw.insert(0, "id", ids)
    rows = np.arange(len(raw))
    train_rows, test_rows = train_test_split(
        rows,
        test_size=TEST_SIZE,
        random_state=SEED,
        stratify=raw[target] if spec["stratify"] else None,
    )
    train = raw.iloc[np.sort(train_rows)]
    test = raw.iloc[np.sort(test_rows)]

    if spec["sample"] is None:
        constant = train[target].value_counts().idxmax()
    elif spec["sample"] == "mean":
        constant = f"{train[target].astype(float).mean():.2f}"
    else:
        constant = spec["sample"]

    out.mkdir(parents=True, exist_ok=True)
    write = dict(index=False, lineterminator="\n")
    train[["id", *features, target]].to_csv(out / "train.csv", **write)
    test[["id", *features]].to_csv(out / "test.csv", **write)
    test[["id"]].assign(**{target: constant}).to_csv(out / "sample_submission.csv", **write)
    test[["id", target]].to_csv(out / "solution.csv", **write)
    (out / "competition.yaml").write_text(
        YAML.format(name=name, target=target, metric=spec["metric"], positive=spec["positive"])
    )
    print(f"{name}: {len(train)} train rows, {len(test)} test rows -> {out}")


def reference_score(folder: Path) -> tuple[str, float, float]:
    """A plain scikit-learn HistGradientBoosting on train.csv, scored on solution.csv.

    String columns are ordinal-encoded (missing and unseen values: NaN; categories seen fewer
    than 5 times pooled, which keeps name/ticket/cabin under the 255-bin limit) and handed to
    the booster as native categoricals. Returns (metric, model score, constant-baseline score).
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.metrics import accuracy_score, mean_squared_error, roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OrdinalEncoder

    train = pd.read_csv(folder / "train.csv")
    test = pd.read_csv(folder / "test.csv")
    solution = pd.read_csv(folder / "solution.csv")
    sample = pd.read_csv(folder / "sample_submission.csv")
    target = solution.columns[1]
    X, y = train.drop(columns=["id", target]), train[target]
    strings = [c for c in X.columns if not pd.api.types.is_numeric_dtype(X[c])]
    encode = ColumnTransformer(
        [
            (
                "cat",
                OrdinalEncoder(
                    handle_unknown="use_encoded_value",
                    unknown_value=np.nan,
                    encoded_missing_value=np.nan,
                    min_frequency=5,
                ),
                strings,
            )
        ],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    metric = SETS[folder.name]["metric"]
    kind = HistGradientBoostingRegressor if metric == "rmse" else HistGradientBoostingClassifier
    model = make_pipeline(encode, kind(categorical_features=strings, random_state=SEED))
    model.fit(X, y)
    Xt, truth = test.drop(columns=["id"]), solution[target]
    if metric == "accuracy":
        return (
            metric,
            accuracy_score(truth, model.predict(Xt)),
            accuracy_score(truth, sample[target]),
        )
    if metric == "auc":
        return metric, roc_auc_score(truth, model.predict_proba(Xt)[:, 1]), 0.5
    rmse = mean_squared_error(truth, model.predict(Xt)) ** 0.5
    return metric, rmse, mean_squared_error(truth, sample[target]) ** 0.5


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--penguins", type=Path, help="palmerpenguins wheel (0.1.6)")
    parser.add_argument("--wage", type=Path, help="ISLP wheel (0.6.0)")
    parser.add_argument("--titanic", type=Path, help="OpenML 40945 ARFF from sklearn's tests")
    parser.add_argument(
        "--out", type=Path, default=OUT, help="parent folder (default: %(default)s)"
    )
    parser.add_argument("--score", action="store_true", help="print reference scores")
    args = parser.parse_args(argv)
    if args.penguins:
        build(
            "penguins",
            read_wheel_csv(args.penguins, SETS["penguins"]["member"]),
            args.out / "penguins",
        )
    if args.wage:
        build("wage", read_wheel_csv(args.wage, SETS["wage"]["member"]), args.out / "wage")
    if args.titanic:
        build("titanic", read_arff(args.titanic), args.out / "titanic")
    if args.score:
        for name in SETS:
            if (args.out / name / "train.csv").is_file():
                metric, score, base = reference_score(args.out / name)
                print(f"{name}: {metric} {score:.4f} (constant sample submission: {base:.4f})")
    if not (args.penguins or args.wage or args.titanic or args.score):
        parser.error("give at least one of --penguins, --wage, --titanic, --score")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
