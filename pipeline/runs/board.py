"""A competition's finished runs as leaderboard rows: train runs, tune folders (their final fit)
and blends, each with its out-of-fold score, its nested blend score, its date and the config
keys in which it differs from the competition's defaults (for the run's own model)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import yaml

from pipeline.config import flatten, to_dict
from pipeline.errors import UserError
from pipeline.run.folder import MARKER

# keys that change where a run writes or what it logs, never its numbers
QUIET_PREFIXES = ("log.",)


@dataclass
class Row:
    run: str  # the folder, relative to the runs folder
    kind: str  # train, tune (N trials), blend (method, N members)
    date: datetime | None
    cv: float | None  # the network's out-of-fold score (after post-processing, if any)
    blend: float | None  # the nested blend score (a blend run's own score)
    seconds: float | None
    differs: list[str] = field(default_factory=list)  # "key=value" against the defaults
    greater_is_better: bool = True

    @property
    def best(self) -> float | None:
        """The better of the two scores: what the run offers for submission."""
        scores = [s for s in (self.cv, self.blend) if s is not None and math.isfinite(s)]
        if not scores:
            return None
        return max(scores) if self.greater_is_better else min(scores)


def read_runs(folder: Path, competition: str, defaults) -> tuple[list[Row], int]:
    """Rows for every finished run of `competition` directly inside `folder`, and how many
    folders were skipped (unfinished, not runs, or another competition's). `defaults(model)`
    gives the flattened default config for that model, to compare each config.yaml with."""
    rows, skipped = [], 0
    for path in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        row = read_run(path, folder, competition, defaults)
        if row is None:
            skipped += 1
        else:
            rows.append(row)
    return rows, skipped


def read_run(path: Path, folder: Path, competition: str, defaults) -> Row | None:
    metrics = _json(path / "metrics.json")
    if metrics is None or "oof_score" not in metrics:
        return None
    if metrics.get("competition", competition) != competition:
        return None
    tune = _json(path / "tune.json")
    if tune is None and not (path / MARKER).exists():
        return None  # a train or blend run that never finished
    greater = bool(metrics.get("greater_is_better", True))
    seconds = metrics.get("seconds")  # a blend's is a number, a run's a breakdown
    if isinstance(seconds, dict):
        seconds = seconds.get("total")
    common = dict(
        run=path.relative_to(folder).as_posix(),
        date=_date(path),
        seconds=seconds,
        greater_is_better=greater,
    )
    if "members" in metrics:  # pipeline.blend
        members = [m["name"] for m in metrics["members"]]
        kind = f"blend ({metrics.get('method', '?')}, {len(members)} members)"
        members = [", ".join(members)]  # names may hold spaces: "ridge (all columns)"
        return Row(kind=kind, cv=None, blend=metrics["oof_score"], differs=members, **common)
    post = metrics.get("post") or {}
    blend = (metrics.get("blend") or {}).get("nested_oof_score")
    kind = "train"
    if tune is not None:
        counts = tune.get("counts", {})
        kind = f"tune ({counts.get('finished', '?')} trials)"
    cv = post.get("oof_score", metrics["oof_score"])
    differs = config_differences(path / "config.yaml", defaults)
    return Row(kind=kind, cv=cv, blend=blend, differs=differs, **common)


def config_differences(path: Path, defaults) -> list[str]:
    """`key=value` for each key of the run's config that differs from the defaults of the
    competition for the run's model (keys the defaults lack are the model's own: skipped)."""
    try:
        config = flatten(yaml.safe_load(path.read_text()) or {})
    except (OSError, yaml.YAMLError, AttributeError):
        return ["(no readable config.yaml)"]
    model = config.get("model.name")
    base = defaults(model)
    out = [f"model.name={model}"] if model and model != defaults(None).get("model.name") else []
    for key, value in config.items():
        if key.startswith(QUIET_PREFIXES) or key not in base or base[key] == value:
            continue
        out.append(f"{key}={_short(value)}")
    return out


def competition_defaults(competition):
    """defaults(model_name): the competition's resolved defaults with that model, flattened."""
    from pipeline.run.inputs import resolve_config

    cache: dict = {}

    def defaults(model: str | None) -> dict:
        if model not in cache:
            overrides = [f"model.name={model}"] if model else []
            try:
                cache[model] = flatten(to_dict(resolve_config(competition, None, overrides)))
            except UserError:  # a model no longer registered: compare with the plain defaults
                cache[model] = flatten(to_dict(resolve_config(competition, None, [])))
        return cache[model]

    return defaults


def _json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _date(path: Path) -> datetime | None:
    """When the run was made: provenance.json's `created`, else metrics.json's time."""
    created = (_json(path / "provenance.json") or {}).get("created")
    try:
        return datetime.fromisoformat(created).astimezone() if created else None
    except (TypeError, ValueError):
        pass
    try:
        stamp = (path / "metrics.json").stat().st_mtime
    except OSError:
        return None
    return datetime.fromtimestamp(stamp, tz=timezone.utc).astimezone()


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return "[" + ",".join(_short(v) for v in value) + "]"
    return str(value)
