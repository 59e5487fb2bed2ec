"""python -m pipeline.new NAME --data-dir DIR [--metric M] [--slug S] [--out FILE] [--force]

Writes a competition.yaml inferred from a Kaggle download and prints it: the train, test and
sample submission files, the id and target (from the sample submission), the task (from the
target's values) and a metric to confirm against the competition's Evaluation page. Then
`python -m pipeline.train NAME` runs it (the file goes to competitions/NAME/ by default).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.cli import ArgumentParser, run_cli
from pipeline.errors import DataError, UserError
from pipeline.faults import check_writable
from pipeline.io import check_name, write_text
from pipeline.kaggle.archive import unpacked
from pipeline.tabular.read import read_csv
from pipeline.tabular.spec import SPEC_FILE


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m pipeline.new",
        description="Write a competition.yaml inferred from a Kaggle download (CSV files).",
    )
    parser.add_argument("name", help="the competition's name, e.g. playground-s5e1")
    parser.add_argument(
        "--data-dir",
        type=Path,
        required=True,
        help="folder with the CSV files, or Kaggle's zip of them (extracted once beside it)",
    )
    parser.add_argument("--metric", help="the competition's metric (default: guessed; check it)")
    parser.add_argument("--slug", help="Kaggle slug, for pipeline.download / pipeline.submit")
    parser.add_argument(
        "--out", type=Path, help=f"where to write (default: competitions/NAME/{SPEC_FILE})"
    )
    parser.add_argument("--force", action="store_true", help="replace an existing file")
    return parser


def find_files(data_dir: Path) -> tuple[Path, str, str, str | None]:
    """(the folder of the files, train, test, sample): a zip of Kaggle's, given or in the
    folder, is extracted once next to itself first (pipeline.kaggle.archive)."""
    data_dir = unpacked(data_dir, ()) if data_dir.exists() else data_dir
    if not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} is not a folder (nor a zip of the files).")
    csvs = sorted(p.name for p in data_dir.glob("*.csv"))
    sample = [n for n in csvs if "sample" in n.lower() or "submission" in n.lower()]
    train = [n for n in csvs if "train" in n.lower() and n not in sample]
    test = [n for n in csvs if "test" in n.lower() and n not in sample]
    if len(train) != 1 or len(test) != 1:
        held = csvs or sorted(p.name for p in data_dir.iterdir() if not p.name.startswith("."))
        raise DataError(
            f"{data_dir} holds {', '.join(held[:6]) or 'nothing'}"
            f"{' ...' if len(held) > 6 else ''}: expected one train and one test CSV file "
            "(names holding 'train' and 'test'), or Kaggle's zip of them."
        )
    return data_dir, train[0], test[0], sample[0] if sample else None


def infer(data_dir: Path, metric: str | None = None) -> dict:
    data_dir, train_name, test_name, sample_name = find_files(data_dir)
    train = read_csv(data_dir / train_name, "the training data")
    test = read_csv(data_dir / test_name, "the test data")
    sample = read_csv(data_dir / sample_name, "the sample submission") if sample_name else None
    id_col = (
        sample.columns[0]
        if sample is not None
        else next((c for c in test.columns if c in train.columns), None)
    )
    extra = [c for c in train.columns if c not in test.columns]
    if sample is not None and len(sample.columns) == 2 and sample.columns[1] in train.columns:
        target = sample.columns[1]
    elif len(extra) == 1:
        target = extra[0]
    else:
        raise DataError(
            f"cannot tell the target column: the train file's columns not in the "
            f"test file are {extra}; write competition.yaml by hand."
        )
    task = task_of(train[target])
    per_class = sample is not None and len(sample.columns) > 2
    fractional = sample is not None and not per_class and _fractional(sample.iloc[:, 1])
    return {
        "name": None,
        "slug": None,
        "train": train_name,
        "test": test_name,
        "sample_submission": sample_name,
        "id": id_col,
        "target": target,
        "task": task,
        "metric": metric or guess_metric(task, per_class, fractional),
        "positive": None,
        "categorical": [],
        "drop": [],
        "_types": _types(train, [id_col, target]),
        "_batch_size": batch_size_for(len(train)),
        "_data_dir": data_dir,
        "_target": target_advice(train[target], task, metric),
    }


SKEWED = 1.0  # sample skewness above which a positive target reads as rmsle-shaped


def target_advice(y: pd.Series, task: str, metric: str | None) -> dict:
    """What the yaml adds for a regression target: a standardised target where that is not
    the default (features.scale_target), and for a positive, right-skewed target (prices,
    counts) whose metric was guessed, "rmsle?" in the metric's CHECK note: competitions on
    such targets often score the log error."""
    from pipeline.tabular.features import TabularFeatures

    if task != "regression":
        return {}
    advice: dict = {}
    if not TabularFeatures.__dataclass_fields__["scale_target"].default:
        advice["defaults"] = [
            "  features:",
            "    scale_target: true  # standardise the target on each training fold",
        ]
    values = pd.to_numeric(y, errors="coerce").dropna()
    if metric is None and len(values) > 2 and values.min() >= 0 and values.skew() > SKEWED:
        advice["metric"] = f" (a positive target, skewness {values.skew():.1f}: rmsle?)"
    return advice


def batch_size_for(rows: int) -> int:
    """Small sets train better on small batches (more steps per epoch); large ones faster on
    large batches."""
    for limit, size in ((1_000, 32), (10_000, 64), (100_000, 128), (1_000_000, 512)):
        if rows < limit:
            return size
    return 2048


def task_of(y: pd.Series) -> str:
    n = y.nunique()
    if y.dtype.kind in "iuf":
        values = y.dropna().to_numpy(dtype=float)
        if np.all(values == np.round(values)) and n == 2:
            return "binary"
        return "regression"
    return "binary" if n == 2 else "multiclass"


def guess_metric(task: str, per_class: bool, fractional: bool) -> str:
    if task == "regression":
        return "rmse"
    if per_class:
        return "logloss"
    return "auc" if task == "binary" and fractional else "accuracy"


def _fractional(values: pd.Series) -> bool:
    numbers = pd.to_numeric(values, errors="coerce").dropna().to_numpy()
    return len(numbers) > 0 and bool(np.any(numbers != np.round(numbers)))


def _types(train: pd.DataFrame, skip: list[str]) -> list[str]:
    lines = []
    for name in train.columns:
        if name in skip:
            continue
        kind = "numeric" if train[name].dtype.kind in "iuf" else "categorical"
        missing = int(train[name].isna().sum())
        lines.append(
            f"#   {name}: {kind}, {train[name].nunique()} values"
            + (f", {missing} missing" if missing else "")
        )
    return lines


def render(name: str, found: dict, slug: str | None) -> str:
    def value(v):
        if v is None:
            return "null"
        if isinstance(v, list):
            return "[" + ", ".join(v) + "]"
        return str(v)

    advice = found.get("_target") or {}
    notes = {
        "metric": "  # CHECK: the metric on the competition's Evaluation page"
        + advice.get("metric", ""),
        "task": "  # regression | binary | multiclass | auto",
        "categorical": "  # columns to treat as categories besides the text ones",
    }
    data = {**found, "name": name, "slug": slug}
    lines = [f"# {name}: written by python -m pipeline.new from the files; edit as needed."]
    for key in (
        "name",
        "slug",
        "train",
        "test",
        "sample_submission",
        "id",
        "target",
        "task",
        "metric",
        "positive",
        "categorical",
        "drop",
    ):
        lines.append(f"{key}: {value(data[key])}{notes.get(key, '')}")
    lines += [
        "defaults:  # config keys, as in a --config file",
        "  train:",
        f"    batch_size: {found['_batch_size']}  # chosen from the number of train rows",
        *advice.get("defaults", []),
        "# column types inferred from the train file:",
        *found["_types"],
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    def run() -> int:
        args = build_parser().parse_args(argv)
        check_name(args.name, "NAME")  # competitions/NAME/ stays inside competitions/
        if args.metric:
            from pipeline.model.metrics import get_metric

            get_metric(args.metric)
        out = args.out or Path("competitions") / args.name / SPEC_FILE
        if out.is_dir():
            out = out / SPEC_FILE
        if out.exists() and not args.force:
            raise UserError(f"{out} exists; pass --force to replace it.")
        check_writable(out.parent, "the folder of --out")  # before the data is read
        found = infer(args.data_dir, args.metric)
        text = render(args.name, found, args.slug)
        write_text(out, text)
        print(text, end="")
        here = Path(found["_data_dir"]).resolve() == out.resolve().parent
        data = "" if here else f" --data-dir {found['_data_dir']}"
        print(f"\nwrote {out}; next: python -m pipeline.train {out}{data}")
        return 0

    return run_cli(run)


if __name__ == "__main__":
    raise SystemExit(main())
