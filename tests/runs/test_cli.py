"""python -m pipeline.runs: every finished run of a competition on one board, best first, with
its out-of-fold and nested blend scores, its date and the config keys it changed."""

from __future__ import annotations

import json
import re

import pytest
import yaml

from pipeline.blend import main as blend_main
from pipeline.runs.cli import main
from pipeline.train import main as train_main

TINY = ["--quiet", "cv.folds=2", "train.epochs=4", "train.patience=0"]


def board(capsys, *argv) -> tuple[int, list[str], str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    rows = [line for line in captured.out.splitlines() if re.match(r"│\s+\d+ │", line)]
    return code, rows, captured.out + captured.err


@pytest.fixture(scope="module")
def runs(demo_dir, tmp_path_factory):
    """Two demo runs, one blend of them, one unfinished run and one folder that is no run."""
    root = tmp_path_factory.mktemp("runs")
    data = ["--data-dir", str(demo_dir)]
    assert train_main(["demo", *data, "--out", str(root / "wide"), *TINY]) == 0
    narrow = ["model.hidden=[8]", "optim.lr=0.0001", "log.logger=none"]
    assert train_main(["demo", *data, "--out", str(root / "narrow"), *TINY, *narrow]) == 0
    members = [str(root / "wide"), str(root / "narrow")]
    blend = ["demo", *members, *data, "--out", str(root / "blend"), "--quiet", "--bags", "2"]
    assert blend_main(blend) == 0
    (root / "killed").mkdir()
    (root / "killed" / "config.yaml").write_text("seed: 0\n")  # no metrics, no .complete
    (root / "notes").mkdir()
    return root


@pytest.mark.slow
def test_the_board_ranks_every_finished_run_and_says_what_each_changed(runs, capsys):
    code, rows, text = board(capsys, "demo", "--runs-dir", runs)
    assert code == 0
    cells = [[c.strip() for c in row.split("│")[1:-1]] for row in rows]
    assert sorted(c[1] for c in cells) == ["blend", "narrow", "wide"]
    metrics = {c[1]: json.loads((runs / c[1] / "metrics.json").read_text()) for c in cells}
    best = {  # what the board ranks by: the better of the two scores, higher is better
        name: max(m["oof_score"], (m.get("blend") or {}).get("nested_oof_score", -1.0))
        for name, m in metrics.items()
    }
    assert [c[1] for c in cells] == sorted(best, key=best.get, reverse=True)
    by_name = {c[1]: c for c in cells}
    wide, narrow, blend = by_name["wide"], by_name["narrow"], by_name["blend"]
    assert wide[2] == "train" and blend[2] == "blend (caruana, 2 members)"
    assert float(wide[4]) == pytest.approx(metrics["wide"]["oof_score"], abs=5e-5)
    nested = metrics["wide"]["blend"]["nested_oof_score"]
    assert float(wide[5]) == pytest.approx(nested, abs=5e-5)
    assert blend[4] == "" and float(blend[5]) == pytest.approx(
        metrics["blend"]["oof_score"], abs=5e-5
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", wide[3])
    # both ran with cv.folds=2 and train.epochs=4; narrow also changed width and lr
    assert "cv.folds=2" in wide[7] and "train.epochs=4" in wide[7]
    assert "model.hidden=[8]" in narrow[7] and "optim.lr=0.0001" in narrow[7]
    assert "model.hidden" not in wide[7] and "log." not in narrow[7]
    assert "wide" in blend[7] and "narrow" in blend[7]
    assert "2 folder(s) skipped" in text  # killed (unfinished) and notes (no run)


@pytest.mark.slow
def test_top_and_date_order(runs, capsys):
    _, rows, _ = board(capsys, "demo", "--runs-dir", runs, "--top", "1")
    assert len(rows) == 1
    _, rows, _ = board(capsys, "demo", "--runs-dir", runs, "--sort", "date")
    assert [row.split("│")[2].strip() for row in rows] == ["blend", "narrow", "wide"]


def _fake_run(folder, name, oof, nested, created, config, competition="covid"):
    path = folder / name
    path.mkdir()
    metrics = {"competition": competition, "greater_is_better": False, "oof_score": oof}
    if nested is not None:
        metrics["blend"] = {"nested_oof_score": nested}
    (path / "metrics.json").write_text(json.dumps(metrics))
    (path / "provenance.json").write_text(json.dumps({"created": created}))
    (path / "config.yaml").write_text(yaml.safe_dump(config))
    (path / ".complete").write_text("{}")


def test_lower_is_better_ranks_the_lowest_first_by_either_score(tmp_path, capsys):
    _fake_run(tmp_path, "a", 0.97, 0.96, "2026-12-01T10:00:00+00:00", {"seed": 1})
    _fake_run(tmp_path, "b", 0.95, None, "2026-12-02T10:00:00+00:00", {"seed": 0})
    refs = {"seed": 0, "cv": {"references": ["linear", "hgb"]}}
    _fake_run(tmp_path, "c", 0.99, 0.94, "2026-12-03T10:00:00+00:00", refs)
    _fake_run(tmp_path, "d", 0.10, None, "2026-12-04T10:00:00+00:00", {}, competition="demo")
    code, rows, text = board(capsys, "covid", "--runs-dir", tmp_path)
    assert code == 0
    assert [row.split("│")[2].strip() for row in rows] == ["c", "b", "a"]  # not demo's d
    assert "seed=1" in rows[2] and "(defaults)" in rows[1]
    assert "cv.references=[linear,hgb]" in rows[0]  # a list, not swallowed as rich markup
    assert "1 folder(s) skipped" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["demo", "--runs-dir", "/nonexistent/runs"],
            r"/nonexistent/runs is not a folder of runs; train one with: python -m pipeline.train demo",
        ),
        (["demo", "--top", "-1"], r"--top must be an int >= 0; got -1"),
        (["nope"], r"Unknown competition 'nope'"),
        (["demo", "--sort", "size"], r"invalid choice: 'size'"),
    ],
)
def test_bad_input_is_one_line_exit_2(argv, message, capsys):
    code, _, text = board(capsys, *argv)
    assert code == 2 and re.search(message, text) and text.count("\n") == 1
