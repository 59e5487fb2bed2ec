"""Refusals before a blend: every member must predict the same rows (ids, targets, test rows)
of the same competition and task, on the same folds. Each refusal is one line that names the
run and the difference; weights fitted on rows that do not line up would mean nothing."""

from __future__ import annotations

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


def check_members(members: list[Member], competition, train, test) -> None:
    """DataError (one line) for the first member that does not fit the data or the first."""
    ids = pd.Series(np.asarray(train.ids)).astype(str).to_numpy()
    digest = ids_digest(train.ids)
    for member in members:
        check_kind(member, competition)
        check_rows(member, ids, digest, len(test.ids), competition.task)
        check_target(member, competition, train.y)
        check_folds(member, members[0])


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
