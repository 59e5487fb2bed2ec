"""A seeded fuzz that reaches training: corruptions of the example CSV competitions of
tests/data (their files and their competition.yaml), each run through `python -m
pipeline.train` with a tiny budget (one epoch, two folds, the references on). Every case ends in
exit 0 with a valid submission (checked as pipeline.submit checks it) or exit 2 with one line,
never a traceback, and never a folder left behind: no run folder after exit 2, no hidden
partial folder after either. A failing case names its seed, competition and corruption.

Corruptions: cells, empty and all-empty columns, dropped, added, renamed, repeated and
reordered columns, rows dropped, repeated and reordered, the target (one class, rare classes,
text, missing), the ids (repeated, fractional, not the sample's), separators and encodings,
truncated and empty files, and the yaml's keys (id, target, task, metric, positive, drop,
categorical, name, unknown keys, wrong types).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import time
import traceback
from pathlib import Path

import numpy as np
import pytest
import yaml

from pipeline.competition.catalog import load_competition
from pipeline.submission.format import check_file
from pipeline.train import main
from tests.corruptions import empty, encoding, truncate

DATA = Path(__file__).parent / "data"
NAMES = ("penguins", "wage", "titanic")
FILES = ("train.csv", "test.csv", "sample_submission.csv")
CASES = int(os.environ.get("FUZZ_CASES", "120"))  # more for a deeper search, seeds 0..N-1
TINY = ["--quiet", "train.epochs=1", "cv.folds=2", "model.hidden=[8]", "train.batch_size=512"]
CELLS = ["", " ", "abc", "NaN", "inf", "-inf", "1e300", "3.5e38", "-1", "0", "2.5", "True",
         "\u0661", "9" * 60, '"', "NA"]  # fmt: skip


# -- tables: parsed with csv, as Kaggle's quoted files need --------------------------------------
def parse(data: bytes) -> list[list[str]]:
    return [row for row in csv.reader(io.StringIO(data.decode("utf-8")))]


def unparse(rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue().encode()


def _column(t, rng, skip_first=False) -> int:
    low = 1 if skip_first and len(t[0]) > 1 else 0
    return int(rng.integers(low, len(t[0])))


def cells(t, rng):
    for _ in range(int(rng.integers(1, 4))):
        r, c = int(rng.integers(1, len(t))), _column(t, rng)
        t[r][c] = str(rng.choice(CELLS))
    return t


def empty_column(t, rng):
    c, share = _column(t, rng, skip_first=True), rng.choice([1.0, 1.0, 0.5, 0.95])
    for row in t[1:]:
        if rng.random() < share:
            row[c] = ""
    return t


def drop_column(t, rng):
    c = _column(t, rng)
    return [row[:c] + row[c + 1 :] for row in t]


def add_column(t, rng):
    c = int(rng.integers(0, len(t[0]) + 1))
    name = str(rng.choice(["extra", t[0][0], t[0][-1], "Unnamed: 0"]))
    value = str(rng.choice(["1", "", "a", "2.5"]))
    return [row[:c] + [name if i == 0 else value] + row[c:] for i, row in enumerate(t)]


def rename_column(t, rng):
    c = _column(t, rng)
    t[0][c] = str(rng.choice(["x", t[0][c].upper(), t[0][c] + " ", "", t[0][-1 - c]]))
    return t


def repeat_name(t, rng):
    if len(t[0]) >= 2:
        a, b = rng.choice(len(t[0]), size=2, replace=False)
        t[0][b] = t[0][a]
    return t


def reorder_columns(t, rng):
    order = rng.permutation(len(t[0]))
    return [[row[i] for i in order] for row in t]


def drop_rows(t, rng):
    n = int(rng.choice([1, 3, len(t) // 2, len(t) - 3]))
    keep = set(rng.choice(np.arange(1, len(t)), size=len(t) - 1 - n, replace=False).tolist())
    return [t[0]] + [row for i, row in enumerate(t) if i in keep]


def repeat_rows(t, rng):
    for _ in range(int(rng.integers(1, 4))):
        t.insert(int(rng.integers(1, len(t) + 1)), list(t[int(rng.integers(1, len(t)))]))
    return t


def reorder_rows(t, rng):
    rows = t[1:]
    return [t[0], *(rows[i] for i in rng.permutation(len(rows)))]


def target_values(t, rng):
    """The last column (the target of train, the prediction of the sample): one value, one
    rare value, text, missing, or numbers where labels were."""
    kind = rng.choice(["one", "lonely", "rare", "text", "missing", "numbers"])
    values = [row[-1] for row in t[1:]]
    for i, row in enumerate(t[1:]):
        if kind == "one" or (kind == "lonely" and i > 0):  # lonely: one row of its class
            row[-1] = values[0]
        elif kind == "lonely":
            row[-1] = next((v for v in values if v != values[0]), "other")
        elif kind == "rare" and i == 0:
            row[-1] = "rare"
        elif kind == "text" and rng.random() < 0.3:
            row[-1] = "word"
        elif kind == "missing" and rng.random() < 0.05:
            row[-1] = ""
        elif kind == "numbers":
            row[-1] = f"{rng.normal():.3f}"
    return t


def ids(t, rng):
    kind = rng.choice(["repeat", "fraction", "empty", "new"])
    r = int(rng.integers(1, len(t)))
    t[r][0] = {"repeat": t[1 + (r % (len(t) - 1))][0], "fraction": "3.5", "empty": ""}.get(
        kind, f"new{r}"
    )
    return t


TABLE = [cells, empty_column, empty_column, drop_column, add_column, rename_column,
         repeat_name, reorder_columns, drop_rows, repeat_rows, reorder_rows, target_values,
         ids]  # fmt: skip


def separator(data: bytes, rng) -> bytes:
    return data.replace(b",", b";" if rng.random() < 0.5 else b"\t")


BYTES = [separator, encoding, truncate, empty]


# -- competition.yaml ----------------------------------------------------------------------------
def yaml_key(spec: dict, header: list[str], rng) -> tuple[dict, str | None]:
    """One key of competition.yaml changed; with the refusal a right answer must give, where
    one is known (None: accepting or refusing may both be right)."""
    key = rng.choice(
        [
            "id",
            "target",
            "task",
            "metric",
            "positive",
            "drop",
            "categorical",
            "name",
            "unknown",
            "type",
            "remove",
        ]  # fmt: skip
    )
    column = str(rng.choice(header))
    id_col, target = spec.get("id"), spec.get("target")
    expect = None
    if key in ("id", "target"):
        spec[key] = column
        if spec.get("id") == spec.get("target"):
            expect = "id and target both name the column"
    elif key == "task":
        spec[key] = str(rng.choice(["auto", "regression", "binary", "multiclass", "classes"]))
        if spec[key] == "classes":
            expect = "task must be one of"
    elif key == "metric":
        spec[key] = str(rng.choice(["rmse", "mae", "rmsle", "accuracy", "auc", "logloss", "f1",
                                    "qwk", "r2", "nonsense"]))  # fmt: skip
        if spec[key] == "nonsense":
            expect = "metric must be one of"
        elif spec["name"] == "wage" and spec[key] in ("accuracy", "auc", "logloss", "f1"):
            expect = f"metric {spec[key]} scores classes, but the target 'wage' holds fractional"
        elif spec["name"] == "penguins" and spec[key] in ("rmse", "mae", "rmsle", "r2"):
            expect = "task regression, but the target 'species' holds text"
    elif key == "positive":
        spec[key] = str(rng.choice([column, "Adelie", "1", "yes"]))
        if spec["name"] != "titanic":
            expect = "positive: applies to a binary task"
    elif key in ("drop", "categorical"):
        spec[key] = [column, *([str(rng.choice(header))] if rng.random() < 0.5 else [])]
        if target in spec[key] or id_col in spec[key]:
            expect = f"{key}: lists '.*', the (target|id) column"
    elif key == "name":
        spec[key] = str(rng.choice(["../../escape", "a/b", ".x", "ok-name", ""]))
        if spec[key] != "ok-name":
            expect = "name must be a plain folder name" if spec[key] else "name"
    elif key == "unknown":
        spec["folder"] = "x"
        expect = "unknown key 'folder'"
    elif key == "type":
        key = str(rng.choice(["drop", "categorical", "defaults", "train"]))
        spec[key] = 3
        expect = "3 not found in" if key == "train" else f"{key} must be"  # a file named 3
    else:
        for k in ("id", "target", "sample_submission"):
            if rng.random() < 0.5:
                spec.pop(k, None)
    return spec, expect


# what a single corruption must give, where the right answer is known
EXPECT = {
    "repeat_name": "appears twice",
    "separator": "its values are separated by",
}


# -- one case ------------------------------------------------------------------------------------
def make_case(seed: int, folder: Path) -> tuple[str, str | None]:
    """Write a corrupted copy of a competition into folder; returns what was done, and the
    refusal it must end in where that is known."""
    rng = np.random.default_rng(seed)
    name = NAMES[seed % len(NAMES)]
    source = DATA / name
    for f in FILES:
        shutil.copy(source / f, folder / f)
    spec = yaml.safe_load((source / "competition.yaml").read_text())
    spec.pop("search", None)
    kind = seed // len(NAMES) % 4  # table, bytes, yaml, both a table and the yaml
    done, expect = [], None
    if kind in (0, 3):
        op, target = TABLE[int(rng.integers(0, len(TABLE)))], FILES[int(rng.integers(0, 3))]
        (folder / target).write_bytes(unparse(op(parse((folder / target).read_bytes()), rng)))
        done.append(f"{op.__name__}({target})")
        expect = EXPECT.get(op.__name__)
        if op is empty_column and rng.random() < 0.5:  # the same column empty in both files
            other = "test.csv" if target == "train.csv" else "train.csv"
            done.append(f"then {op.__name__}({other})")
            table = parse((folder / other).read_bytes())
            (folder / other).write_bytes(unparse(op(table, rng)))
    if kind == 1:
        op, target = BYTES[int(rng.integers(0, len(BYTES)))], FILES[int(rng.integers(0, 3))]
        (folder / target).write_bytes(op((folder / target).read_bytes(), rng))
        done.append(f"{op.__name__}({target})")
        expect = EXPECT.get(op.__name__)
    if kind in (2, 3):
        header = parse((source / "train.csv").read_bytes())[0]
        before = dict(spec)
        spec, expect_yaml = yaml_key(spec, header, rng)
        changed = {k: spec.get(k) for k in set(spec) | set(before) if spec.get(k) != before.get(k)}
        done.append(f"yaml {changed}")
        expect = expect_yaml if kind == 2 else None  # two faults: either may be named first
    (folder / "competition.yaml").write_text(yaml.safe_dump(spec))
    return f"{name}: {', '.join(done)}", expect


def run_case(folder: Path, out: Path, expect: str | None = None) -> tuple[str, str]:
    """('accepted' | 'refused', detail); AssertionError for anything else, and for an
    outcome other than the refusal `expect` (a regular expression) where it is given."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main([str(folder), "--out", str(out), *TINY])
    text = err.getvalue()
    left = [p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]
    assert not left, f"hidden folders left beside --out: {left}"
    assert "Traceback" not in text, text
    if code == 2:
        assert text.startswith("error: ") and text.count("\n") == 1, text
        assert not out.exists(), "a run folder after exit 2"
        assert expect is None or re.search(expect, text), f"expected {expect!r}: {text}"
        return "refused", text.strip()
    assert code == 0, f"exit {code}: {text}"
    assert expect is None, f"accepted; expected the refusal {expect!r}"
    competition = load_competition(str(folder))
    check_file(competition, out / "submission.csv", folder)  # as pipeline.submit checks it
    assert (out / ".complete").is_file() and (out / "metrics.json").is_file()
    return "accepted", ""


@pytest.mark.slow
def test_corrupted_csv_competitions_train_or_fail_in_one_line(tmp_path, capsys):
    started = time.perf_counter()
    counts = {"accepted": 0, "refused": 0}
    failures = []
    for seed in range(CASES):
        folder = tmp_path / f"case{seed}"
        folder.mkdir()
        what, expect = make_case(seed, folder)
        try:
            outcome, _ = run_case(folder, tmp_path / f"run{seed}", expect)
            counts[outcome] += 1
        except Exception:
            failures.append(f"seed {seed} ({what}): {traceback.format_exc(limit=-4)}")
        shutil.rmtree(tmp_path / f"run{seed}", ignore_errors=True)
    seconds = time.perf_counter() - started
    with capsys.disabled():
        print(
            f"\ntrain fuzz: {CASES} cases in {seconds:.1f} s: {counts['accepted']} accepted "
            f"(exit 0, valid submission), {counts['refused']} refused (exit 2, one line), "
            f"{len(failures)} failed"
        )
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:6])
    assert counts["accepted"] > CASES // 5 and counts["refused"] > CASES // 5, counts
