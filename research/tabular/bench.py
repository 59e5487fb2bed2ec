"""Held-out scores and wall times of pipeline.train's default run on CSV competitions.

    python -m research.tabular.bench data/tabular/* tests/data/* --label after --out runs/bench

For each competition folder (competition.yaml beside train/test/solution.csv) it runs
`python -m pipeline.train FOLDER --out OUT/LABEL/NAME` as a child process (the code of the
current folder), times it, and scores every submission*.csv the run wrote against
solution.csv with the competition's metric. Runs whose code writes no file per reference get
the references' held-out scores from the library's own reference_predictions on the run's folds
(--refit-references). Prints a Markdown table and writes OUT/LABEL/scores.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def _child_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def held_out(competition, submission: pd.DataFrame, solution: pd.DataFrame) -> float:
    """The competition's metric of a submission against the held-out answers."""
    from pipeline.model.metrics import get_metric

    metric = get_metric(competition.metric_name)
    target = solution.columns[1]
    frame = solution.merge(submission, on=solution.columns[0], suffixes=("", "_sub"))
    if not competition.task.is_classification:
        return metric(frame[target].to_numpy(float), frame[f"{target}_sub"].to_numpy(float))
    names = [str(c) for c in competition.classes]
    y = pd.Index(names).get_indexer(frame[target].astype(str))
    sub_cols = [c for c in submission.columns[1:]]
    if len(sub_cols) > 1:  # one probability column per class
        return metric(y, frame[[c if c in frame else f"{c}_sub" for c in names]].to_numpy(float))
    column = frame[f"{target}_sub"]
    if metric.needs_proba:  # the positive class's probability
        return metric(y, column.to_numpy(float))
    return metric(y, pd.Index(names).get_indexer(column.astype(str)))


def refit_references(folder: Path, run: Path) -> dict[str, np.ndarray]:
    """The references' fold-averaged test predictions, refitted with the library of the
    current folder on the run's folds and config (for code that writes no file per reference)."""
    from pipeline.ensemble.references import reference_predictions
    from pipeline.run.inputs import load_inputs

    ns = argparse.Namespace(
        competition=str(folder), config=run / "config.yaml", overrides=[], data_dir=None
    )
    inputs = load_inputs(ns)
    refs = reference_predictions(
        inputs.competition, inputs.cfg, inputs.train, inputs.splits, inputs.test.X
    )
    return {r.name: (r.test, inputs) for r in refs}


def bench_one(folder: Path, out: Path, extra: list[str], refit: bool) -> dict:
    from pipeline.competition.catalog import load_competition
    from pipeline.submission.format import build_submission

    run = out / folder.name
    start, cpu = time.perf_counter(), _child_cpu()
    cmd = [sys.executable, "-m", "pipeline.train", str(folder), "--out", str(run), "--quiet"]
    cmd += ["--overwrite", *extra]
    done = subprocess.run(cmd, capture_output=True, text=True)
    seconds, cpu = time.perf_counter() - start, _child_cpu() - cpu
    if done.returncode != 0:
        return {"set": folder.name, "error": (done.stderr or done.stdout).strip()[-500:]}
    competition = load_competition(str(folder))
    competition.prepare_data(folder)
    solution = pd.read_csv(folder / "solution.csv", dtype={0: str}, keep_default_na=False)
    solution[solution.columns[0]] = solution[solution.columns[0]].astype(str)
    scores = {}
    for path in sorted(run.glob("submission*.csv")):
        sub = pd.read_csv(path, keep_default_na=False)
        sub[sub.columns[0]] = sub[sub.columns[0]].astype(str)
        scores[path.stem] = held_out(competition, sub, solution)
    if refit:
        for name, (test, inputs) in refit_references(folder, run).items():
            sub = build_submission(
                inputs.competition, inputs.test.ids, test, sample=inputs.sample, fmt=inputs.fmt
            )
            sub[sub.columns[0]] = sub[sub.columns[0]].astype(str)
            scores[f"reference {name}"] = held_out(competition, sub, solution)
    metrics = json.loads((run / "metrics.json").read_text())
    oof = {"network": metrics["oof_score"]}
    oof.update({r["name"]: r["oof_score"] for r in metrics.get("references") or []})
    if metrics.get("blend") and "nested_oof_score" in metrics["blend"]:
        oof["blend (nested)"] = metrics["blend"]["nested_oof_score"]
    return {
        "set": folder.name,
        "metric": competition.metric_name,
        "seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 1),  # user + system time of the run: less load-dependent
        "held_out": scores,
        "oof": oof,
        "recommended": metrics.get("recommended"),
        "load": os.getloadavg()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--label", default="run")
    parser.add_argument("--out", type=Path, default=Path("runs/bench"))
    parser.add_argument("--refit-references", action="store_true")
    parser.add_argument("--set", action="append", default=[], help="key=value for every run")
    args = parser.parse_args(argv)
    out = args.out / args.label
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for folder in args.folders:
        print(f"{folder.name}: load {os.getloadavg()[0]:.2f}", flush=True)
        result = bench_one(folder, out, args.set, args.refit_references)
        print(json.dumps(result), flush=True)
        results.append(result)
        (out / "scores.json").write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
