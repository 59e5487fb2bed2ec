"""Blend members: a finished run's out-of-fold and test predictions read back from its folder,
with what decides whether runs can be blended (competition, task, rows, ids, folds).

What a folder holds:
- a run folder (pipeline.train, pipeline.blend, a tune folder's final fit; pipeline/run/fit.py):
  metrics.json (the keys of `run_info`), oof.csv (id, fold, target, prediction) and the
  predictions in the engine's space: oof_pred.npy / test_pred.npy (regression values on the
  model's target scale) or oof_proba.npy / test_proba.npy (class probabilities);
- a trial folder `trials/<n>/` of pipeline.tune (pipeline/tune/objective.py): oof.npy,
  test.npy, folds.npy (the fold of each row) and trial.json (run_info's keys, the trial's
  value and parameters, a digest of the training ids); trials saved before folds.npy and
  trial.json existed borrow their tune folder's final fit's rows and folds;
- a tune folder: its saved trials, best first (`top_k` of them).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.errors import DataError, UserError

TRIAL_FILES = ("oof.npy", "test.npy")  # what every saved trial holds


def run_info(competition, cfg, n_train: int, n_test: int) -> dict:
    """What a run's metrics.json (and a trial's trial.json) says about its rows and folds."""
    task, metric = competition.task, competition.metric
    return {
        "competition": competition.name,
        "metric": metric.name,
        "greater_is_better": metric.greater_is_better,
        "task": {"kind": task.kind, "n_classes": task.n_classes},
        "cv": {"strategy": cfg.cv.strategy, "folds": cfg.cv.folds, "gap": cfg.cv.gap},
        "seed": cfg.seed,
        "n_train": int(n_train),
        "n_test": int(n_test),
    }


def ids_digest(ids) -> str:
    """sha256 of the ids as text, in row order: a trial's rows without a copy of the ids."""
    text = "\n".join(pd.Series(np.asarray(ids)).astype(str))
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class Member:
    """One blend member's predictions of the training rows (out of fold) and the test rows."""

    name: str
    path: Path | None  # None: a reference fitted by the blend itself
    info: dict  # run_info's keys
    oof: np.ndarray  # (n,) values or (n, K) probabilities, float64; NaN where no fold validated
    test: np.ndarray
    folds: np.ndarray  # fold of each row, -1: never validated
    ids: np.ndarray | None = None  # the rows' ids as text (oof.csv)
    ids_sha256: str | None = None  # the digest, where only that was saved (trials)
    target: np.ndarray | None = None  # oof.csv's target, on the competition's scale
    value: float | None = None  # a trial's objective value, for ranking


def _json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); is the run complete?") from None


def _npy(path: Path) -> np.ndarray:
    try:
        return np.asarray(np.load(path, allow_pickle=False), dtype=np.float64)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); is the run complete?") from None


def _oof_csv(folder: Path) -> pd.DataFrame:
    path = folder / "oof.csv"
    try:
        frame = pd.read_csv(path, dtype={"id": str})
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"{path} cannot be read ({exc}); is the run complete?") from None
    missing = {"id", "fold", "target"} - set(frame.columns)
    if missing:
        raise DataError(f"{path} lacks the column(s) {', '.join(sorted(missing))}.")
    return frame


def load_run(folder: Path) -> Member:
    """A pipeline.train / pipeline.blend run folder as a member."""
    info = _json(folder / "metrics.json")
    pairs = [("oof_pred.npy", "test_pred.npy"), ("oof_proba.npy", "test_proba.npy")]
    saved = [p for p in pairs if all((folder / f).is_file() for f in p)]
    if not saved:
        raise UserError(
            f"run {folder} has no saved predictions (oof_pred.npy and test_pred.npy, or "
            "oof_proba.npy and test_proba.npy); runs of older versions lack them: train it again."
        )
    oof_file, test_file = saved[0]
    frame = _oof_csv(folder)
    return Member(
        name=folder.name,
        path=folder,
        info=info,
        oof=_npy(folder / oof_file),
        test=_npy(folder / test_file),
        folds=frame["fold"].to_numpy(dtype=np.int64),
        ids=frame["id"].to_numpy(dtype=str),
        target=frame["target"].to_numpy(),
    )


def is_tune_dir(folder: Path) -> bool:
    return (folder / "tune.json").is_file()


def load_trial(folder: Path) -> Member:
    """A saved trial `trials/<n>/` of a tune folder as a member."""
    tune_dir = folder.parent.parent
    missing = [f for f in TRIAL_FILES if not (folder / f).is_file()]
    if missing:
        raise UserError(f"trial folder {folder} lacks {' and '.join(missing)}.")
    name = f"{tune_dir.name}/trial {int(folder.name) if folder.name.isdigit() else folder.name}"
    oof, test = _npy(folder / "oof.npy"), _npy(folder / "test.npy")
    if (folder / "trial.json").is_file() and (folder / "folds.npy").is_file():
        info = _json(folder / "trial.json")
        folds = np.load(folder / "folds.npy").astype(np.int64)
        return Member(
            name,
            folder,
            info,
            oof,
            test,
            folds,
            ids_sha256=info.get("ids_sha256"),
            value=info.get("value"),
        )
    # saved by an older version: the study's rows and folds are its final fit's, unless the
    # study searched the folds themselves
    searched = _json(tune_dir / "tune.json").get("params") or []
    if (
        any(p == "seed" or p.startswith("cv.") for p in searched)
        or not (tune_dir / "oof.csv").is_file()
    ):
        raise UserError(
            f"trial folder {folder} has no folds.npy (saved by an older pipeline.tune) and its "
            "folds cannot be taken from the tune folder's final fit; run the study again."
        )
    final = load_run(tune_dir)
    top = {row["number"]: row["value"] for row in _json(tune_dir / "tune.json").get("top", [])}
    number = int(folder.name) if folder.name.isdigit() else None
    return Member(
        name,
        folder,
        final.info,
        oof,
        test,
        final.folds,
        ids=final.ids,
        target=final.target,
        value=top.get(number),
    )


def trial_folders(tune_dir: Path, top_k: int | None) -> list[Path]:
    """The tune folder's saved trials, best first; the first top_k of them (None: all)."""
    folders = [p for p in sorted((tune_dir / "trials").glob("*")) if p.is_dir()]
    folders = [p for p in folders if all((p / f).is_file() for f in TRIAL_FILES)]
    if not folders:
        raise UserError(
            f"tune folder {tune_dir} holds no saved trials in trials/ (pipeline.tune keeps the "
            "--top-k best, default 5; --top-k 0 keeps none)."
        )
    tune = _json(tune_dir / "tune.json")
    sign = -1.0 if tune.get("greater_is_better", False) else 1.0
    top = {row["number"]: row["value"] for row in tune.get("top", [])}

    def value(folder: Path) -> float:
        if (folder / "trial.json").is_file():
            v = _json(folder / "trial.json").get("value")
        else:
            v = top.get(int(folder.name)) if folder.name.isdigit() else None
        return sign * v if v is not None else np.inf  # unknown values last

    ranked = sorted(folders, key=lambda f: (value(f), f.name))
    return ranked if top_k is None else ranked[:top_k]


def _trial_path(path: Path) -> Path:
    """`tune-x/trials/3` names the folder tune-x/trials/00003."""
    if not path.exists() and path.parent.name == "trials" and path.name.isdigit():
        padded = path.with_name(f"{int(path.name):05d}")
        if padded.is_dir():
            return padded
    return path


def load_members(paths: list[Path], top_k: int | None = None) -> list[Member]:
    """Each path as members: a run folder, a trial folder, or a tune folder's best trials."""
    members, seen = [], set()
    for given in paths:
        path = _trial_path(Path(given))
        if not path.is_dir():
            raise UserError(
                f"{given} is not a folder; pass run folders (pipeline.train, "
                "pipeline.tune trials, pipeline.blend)."
            )
        if path.parent.name == "trials" and is_tune_dir(path.parent.parent):
            loaded = [load_trial(path)]
        elif is_tune_dir(path):
            loaded = [load_trial(f) for f in trial_folders(path, top_k)]
        elif (path / "metrics.json").is_file():
            loaded = [load_run(path)]
        else:
            raise UserError(
                f"{given} is not a run folder (no metrics.json): pass folders that "
                "pipeline.train, pipeline.tune or pipeline.blend wrote."
            )
        for member in loaded:
            key = member.path.resolve()
            if key in seen:
                raise UserError(f"{member.path} is given twice; each run is one member.")
            seen.add(key)
            members.append(member)
    _unique_names(members)
    return members


def _unique_names(members: list[Member]) -> None:
    """Two folders of the same name (runs/a/x, runs/b/x) are told apart by their parents."""
    names = [m.name for m in members]
    for m in members:
        if names.count(m.name) > 1 and m.path is not None:
            m.name = f"{m.path.parent.name}/{m.path.name}"
