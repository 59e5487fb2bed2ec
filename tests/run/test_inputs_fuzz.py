"""A seeded fuzz of the input checks: a few hundred random corruptions of the COVID and demo
files (cells, rows, columns, bytes), each of which must load as valid inputs (whose submission
then builds) or fail with a UserError of one line, never another exception. Inputs only, no
training: `load_inputs` through train's own argument parsing; every tenth failure also runs the
train command to show exit 2, one line and no run folder. A failing case names its seed.
"""

from __future__ import annotations

import os
import time
import traceback

import numpy as np
import pytest

from pipeline.errors import UserError
from pipeline.run.inputs import load_inputs
from pipeline.submission.format import build_submission
from pipeline.train import build_parser, main
from tests.corruptions import empty, encoding, truncate

CASES = 300
FILES = {
    "covid": ("covid.train.csv", "covid.test.csv", "sampleSubmission.csv"),
    "demo": ("train.csv", "test.csv", "sample_submission.csv"),
}
CELLS = [
    "abc",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "",
    " ",
    "1e300",
    "-1e300",
    "3.5e38",
    "-3.5e38",
    "1e38",
    "0x1F",
    "1,5",
    '"',
    "--",
    "1e-320",
    "\u0661",
    "True",
    "9" * 400,
    "2.5",
    "-1",
    "1e10",
]


def _table(data: bytes) -> list[list[str]]:
    return [line.split(",") for line in data.decode().splitlines()]


def _bytes(table: list[list[str]]) -> bytes:
    return ("\n".join(",".join(row) for row in table) + "\n").encode()


def _cells(t, rng):
    for _ in range(rng.integers(1, 4)):
        r, c = rng.integers(1, len(t)), rng.integers(0, len(t[0]))
        t[r][c] = str(rng.choice(CELLS))
    return t


def _duplicate_row(t, rng):
    t.insert(int(rng.integers(1, len(t) + 1)), list(t[rng.integers(1, len(t))]))
    return t


def _drop_rows(t, rng):
    n = int(rng.choice([1, 3, len(t) // 2, len(t) - 2]))
    drop = set(rng.choice(np.arange(1, len(t)), size=min(n, len(t) - 1), replace=False).tolist())
    return [row for i, row in enumerate(t) if i not in drop]


def _reorder_rows(t, rng):
    rows = t[1:]
    return [t[0], *(rows[i] for i in rng.permutation(len(rows)))]


def _rename_column(t, rng):
    c = rng.integers(0, len(t[0]))
    t[0][c] = str(rng.choice(["x", t[0][c].upper(), t[0][c] + " ", "", t[0][-1 - c]]))
    return t


def _drop_column(t, rng):
    c = rng.integers(0, len(t[0]))
    return [row[:c] + row[c + 1 :] for row in t]


def _add_column(t, rng):
    c = int(rng.integers(0, len(t[0]) + 1))
    name = str(rng.choice(["extra", t[0][0], "Unnamed: 0"]))
    return [row[:c] + [name if i == 0 else "1"] + row[c:] for i, row in enumerate(t)]


def _reorder_columns(t, rng):
    order = rng.permutation(len(t[0])) if rng.random() < 0.5 else None
    if order is None:
        a, b = rng.choice(len(t[0]), size=2, replace=False)
        order = np.arange(len(t[0]))
        order[[a, b]] = order[[b, a]]
    return [[row[i] for i in order] for row in t]


TABLE_OPS = [
    _cells,
    _duplicate_row,
    _drop_rows,
    _reorder_rows,
    _rename_column,
    _drop_column,
    _add_column,
    _reorder_columns,
]


def _garbage(data, rng):
    at = int(rng.integers(0, len(data)))
    return (
        data[:at] + bytes(rng.integers(0, 256, size=int(rng.integers(1, 8))).tolist()) + data[at:]
    )


BYTE_OPS = [truncate, empty, encoding, _garbage]
OPS = TABLE_OPS + BYTE_OPS


def corrupt(data: bytes, op, rng) -> bytes:
    return _bytes(op(_table(data), rng)) if op in TABLE_OPS else op(data, rng)


def _check(name: str, data_dir, tmp_path, capsys, check_cli: bool) -> str:
    """'ok' or 'refused'; raises AssertionError for anything else."""
    args = build_parser().parse_intermixed_args([name, "--data-dir", str(data_dir), "--quiet"])
    try:
        inputs = load_inputs(args)
    except UserError as exc:
        assert "\n" not in str(exc), f"a message of several lines: {exc}"
        if check_cli:
            out = tmp_path / "run"
            code = main([name, "--data-dir", str(data_dir), "--out", str(out)])
            err = capsys.readouterr().err
            assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
            assert not out.exists(), "files left behind on exit 2"
        return "refused"
    competition = inputs.competition
    labels = np.zeros(
        len(inputs.test.ids), dtype=np.int64 if competition.task.is_classification else np.float32
    )
    build_submission(competition, inputs.test.ids, labels, sample=inputs.sample)  # the run's end
    return "ok"


@pytest.fixture(scope="module")
def originals(covid_dir, tmp_path_factory, demo):
    demo_dir = tmp_path_factory.mktemp("demo-fuzz")
    demo.prepare_data(demo_dir)
    dirs = {"covid": covid_dir, "demo": demo_dir}
    return {
        name: {f: (dirs[name] / f).read_bytes() for f in files} for name, files in FILES.items()
    }, dirs


def test_random_corruptions_load_or_fail_with_one_line(originals, tmp_path, capsys):
    files, dirs = originals
    started = time.perf_counter()
    outcomes, failures = {"ok": 0, "refused": 0}, []
    for seed in range(CASES):
        rng = np.random.default_rng(seed)
        name = ("covid", "demo")[seed % 2]
        op = OPS[(seed // 2) % len(OPS)]
        target = FILES[name][int(rng.integers(0, 3))]
        case = tmp_path / f"case{seed}"
        case.mkdir()
        for f in FILES[name]:
            if f == target:
                (case / f).write_bytes(corrupt(files[name][f], op, rng))
            else:
                os.symlink(dirs[name] / f, case / f)
        try:
            result = _check(name, case, case, capsys, check_cli=outcomes["refused"] % 10 == 0)
            outcomes[result] += 1
        except Exception:
            failures.append(
                f"seed {seed} ({name} {target}, {op.__name__}): {traceback.format_exc(limit=-3)}"
            )
    seconds = time.perf_counter() - started
    print(f"fuzz: {CASES} cases in {seconds:.1f} s: {outcomes}")
    assert not failures, f"{len(failures)} of {CASES} cases failed:\n" + "\n".join(failures[:5])
    assert outcomes["ok"] > 10 and outcomes["refused"] > 100, outcomes  # both outcomes seen
