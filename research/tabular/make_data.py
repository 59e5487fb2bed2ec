"""Lay out public tabular data sets as Kaggle competitions with held-out answers.

Sources ship inside PyPI wheels (pip is the only network needed):

    pip download --no-deps ISLP==0.6.0 plotnine==0.15.9 -d /tmp/wheels
    python -m research.tabular.make_data --islp /tmp/wheels/islp-0.6.0-py3-none-any.whl \
        --plotnine /tmp/wheels/plotnine-0.15.9-py3-none-any.whl --out data/tabular

Each set is written as tests/data/ lays them out (scripts/make_example_data.py): train.csv,
test.csv (25% of the rows, seeded split), sample_submission.csv, solution.csv (the held-out
answers) and competition.yaml. Cells keep the source's own text.

| set | source | rows | task, metric |
|---|---|---|---|
| diamonds | plotnine's diamonds, price | 53,940 | regression, rmsle |
| diamonds_cut | plotnine's diamonds, cut (a probability column per class) | 53,940 | logloss |
| default | ISLP's Default, default | 10,000 | binary, auc |
| bikeshare | ISLP's Bikeshare, bikers (casual and registered dropped) | 8,645 | regression, mae |
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

TEST_SIZE = 0.25
SEED = 0

# name: (wheel, member, target, metric, dropped columns, stratify, positive class)
SETS = {
    "diamonds": ("plotnine", "plotnine/data/diamonds.csv", "price", "rmsle", [], False, None),
    "diamonds_cut": ("plotnine", "plotnine/data/diamonds.csv", "cut", "logloss", [], True, None),
    "default": ("islp", "ISLP/data/Default.csv", "default", "auc", [], True, "Yes"),
    "bikeshare": (
        "islp",
        "ISLP/data/Bikeshare.csv",
        "bikers",
        "mae",
        ["casual", "registered"],
        False,
        None,
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


def build(name: str, wheel: Path, out: Path) -> None:
    _, member, target, metric, drop, stratify, positive = SETS[name]
    raw = read_wheel_csv(wheel, member).drop(columns=drop)
    features = [c for c in raw.columns if c != target]
    raw.insert(0, "id", [str(i + 1) for i in range(len(raw))])
    rows = np.arange(len(raw))
    train_rows, test_rows = train_test_split(
        rows, test_size=TEST_SIZE, random_state=SEED, stratify=raw[target] if stratify else None
    )
    train, test = raw.iloc[np.sort(train_rows)], raw.iloc[np.sort(test_rows)]
    out.mkdir(parents=True, exist_ok=True)
    write = dict(index=False, lineterminator="\n")
    train[["id", *features, target]].to_csv(out / "train.csv", **write)
    test[["id", *features]].to_csv(out / "test.csv", **write)
    test[["id", target]].to_csv(out / "solution.csv", **write)
    if metric == "logloss":  # one probability column per class, the train frequencies
        freq = train[target].value_counts(normalize=True).sort_index()
        sample = test[["id"]].assign(**{c: round(p, 4) for c, p in freq.items()})
    elif metric == "auc":
        sample = test[["id"]].assign(**{target: 0.5})
    else:
        sample = test[["id"]].assign(**{target: round(train[target].astype(float).mean(), 2)})
    sample.to_csv(out / "sample_submission.csv", **write)
    (out / "competition.yaml").write_text(
        YAML.format(
            name=name,
            target=target,
            metric=metric,
            positive=f'"{positive}"' if positive else "null",
        )
    )
    print(f"{name}: {len(train)} train rows, {len(test)} test rows -> {out}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--islp", type=Path, help="ISLP wheel (0.6.0)")
    parser.add_argument("--plotnine", type=Path, help="plotnine wheel (0.15.9)")
    parser.add_argument("--out", type=Path, default=Path("data/tabular"))
    args = parser.parse_args(argv)
    wheels = {"islp": args.islp, "plotnine": args.plotnine}
    if not any(wheels.values()):
        parser.error("give --islp and/or --plotnine")
    for name, spec in SETS.items():
        if wheels[spec[0]] is not None:
            build(name, wheels[spec[0]], args.out / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
