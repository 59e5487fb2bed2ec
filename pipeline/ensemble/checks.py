"""Refusals before a blend: every member must predict the same rows (ids, targets, test rows)
of the same competition and task, on the same folds. Each refusal is one line that names the
run and the difference; weights fitted on rows that do not line up would mean nothing.

The rows are compared by content, not by count: each data file a member's provenance.json
hashed must have the same sha256 in the blend's data folder, and the digests of the training
and test ids (in their order) that a run records must match the data's. A member trained on a
test file whose rows were reordered would otherwise blend its predictions onto other ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.ensemble.members import Member, ids_digest
from pipeline.errors import DataError
from pipeline.model.metrics import Task

SHARE = "blend members must share their folds (the same cv.* keys and seed)"


def where(member: Member) -> str:
    return f"run {member.path}" if member.path is not None else member.name


def member_task(member: Member) -> Task:
    """The task a member's metrics.json names, else what its arrays hold."""
    task = member.info.get("task")
    if task:
        return Task(task["kind"], task.get("n_classes", 0))
    oof = member.oof
    return Task("classification", oof.shape[1]) if oof.ndim == 2 else Task("regression")


def check_members(
    members: list[Member], competition, train, test, data: dict | None = None
) -> None:
    """DataError (one line) for the first member that does not fit the data or the first.
    `data`: the blend's data files as provenance.json records them ({"dir", "files"})."""
    ids = pd.Series(np.asarray(train.ids)).astype(str).to_numpy()
    digest = ids_digest(train.ids)
    test_digest = ids_digest(test.ids)
    for member in members:
        check_kind(member, competition)
        check_files(member, data)
        check_rows(member, ids, digest, len(test.ids), competition.task)
        check_test_ids(member, test_digest, test.source, data)
        check_target(member, competition, train.y)
        check_folds(member, members[0])


def check_files(member: Member, data: dict | None) -> None:
    """Each data file the member's run read has the bytes of the blend's (by sha256; by size
    where a file was too large to hash)."""
    if member.data is None or data is None:
        return
    theirs = member.data.get("files") or {}
    for rel, ours in (data.get("files") or {}).items():
        mine = theirs.get(rel)
        if not isinstance(mine, dict) or not isinstance(ours, dict):
            continue
        here = Path(data.get("dir", ".")) / rel
        a, b = mine.get("sha256"), ours.get("sha256")
        if a and b and a != b:
            raise DataError(
                f"{where(member)} was trained on another {rel}: {member.data_source} records "
                f"sha256 {a[:12]}..., {here} has {b[:12]}...; blend runs of the same files "
                "(--data-dir: the folder they read)."
            )
        if not (a and b) and mine.get("size") not in (None, ours.get("size")):
            raise DataError(
                f"{where(member)} was trained on another {rel}: {member.data_source} records "
                f"{mine['size']:,} bytes, {here} has {ours.get('size', 0):,}; blend runs of the "
                "same files (--data-dir: the folder they read)."
            )


def check_test_ids(member: Member, digest: str, source: str, data: dict | None) -> None:
    """The test rows the member predicted are the data's, in the same order."""
    recorded = member.test_ids_sha256
    if recorded is not None and recorded != digest:
        here = Path(data["dir"]) / source if data and data.get("dir") else source
        raise DataError(
            f"{where(member)} predicted other test rows: its test ids, in their order, are not "
            f"those of {here}; blend runs of the same files (--data-dir: the folder they read)."
        )


def check_kind(member: Member, competition) -> None:
    name = member.info.get("competition")
    if name is not None and name != competition.name:
        raise DataError(f"{where(member)} is a {name} run; this blend is of {competition.name}.")
    task, mine = competition.task, member_task(member)
    if mine != task:
        raise DataError(
            f"{where(member)} is {mine.describe()} run; {competition.name} is {task.describe()}."
        )


def check_rows(member: Member, ids: np.ndarray, digest: str, n_test: int, task: Task) -> None:
    n = len(ids)
    shape = (n, task.n_classes) if task.is_classification else (n,)
    if member.oof.shape[:1] != shape[:1] or len(member.folds) != n:
        rows = member.oof.shape[0] if member.oof.shape[:1] != shape[:1] else len(member.folds)
        raise DataError(
            f"{where(member)} has {rows:,} out-of-fold rows; the training data has {n:,}."
        )
    if member.oof.shape != shape:  # the task check has passed: a damaged array
        raise DataError(
            f"{where(member)} has out-of-fold predictions of shape "
            f"{member.oof.shape}; expected {shape}."
        )
    if member.test.shape != (n_test, *shape[1:]):
        raise DataError(
            f"{where(member)} has {member.test.shape[0]:,} test predictions; the test data has "
            f"{n_test:,} rows."
        )
    if not np.isfinite(member.test).all():
        raise DataError(f"{where(member)} has test predictions that are NaN or infinite.")
    if member.ids is not None:
        differ = member.ids != ids
        if differ.any():
            i = int(np.argmax(differ))
            raise DataError(
                f"{where(member)} has id {member.ids[i]} in row {i + 1}, the training data "
                f"{ids[i]}: it was trained on other rows."
            )
    elif member.ids_sha256 is not None and member.ids_sha256 != digest:
        raise DataError(
            f"{where(member)} was trained on other rows (its ids differ from the training data's)."
        )


def check_target(member: Member, competition, y: np.ndarray) -> None:
    if member.target is None:
        return
    if competition.task.is_classification:
        expected = np.asarray(y)
        differ = member.target.astype(np.float64) != expected
    else:
        expected = np.asarray(competition.to_target_scale(y), dtype=np.float64)
        got = member.target.astype(np.float64)
        differ = ~np.isclose(got, expected, rtol=1e-4, atol=1e-6)
    if differ.any():
        i = int(np.argmax(differ))
        raise DataError(
            f"{where(member)} has target {member.target[i]} in row {i + 1}, the training data "
            f"{expected[i]}: it was trained on another file."
        )


def cv_text(cv: dict) -> str:
    gap = f", gap {cv.get('gap', 0)}" if cv.get("strategy") == "blocked" else ""
    return f"{cv.get('folds')}-fold {cv.get('strategy')} CV{gap}"


def check_folds(member: Member, first: Member) -> None:
    mine, theirs = member.info.get("cv"), first.info.get("cv")
    if mine and theirs and mine != theirs:
        raise DataError(
            f"{where(member)} used {cv_text(mine)}, {where(first)} {cv_text(theirs)}; {SHARE}."
        )
    differ = member.folds != first.folds
    if differ.any():
        i = int(np.argmax(differ))
        raise DataError(
            f"{where(member)} puts {int(differ.sum()):,} rows in other folds than "
            f"{where(first)} (row {i + 1}: fold {member.folds[i]} vs {first.folds[i]}); {SHARE}."
        )
