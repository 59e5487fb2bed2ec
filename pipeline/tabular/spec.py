"""competition.yaml: a CSV competition described by one file, no Python.

The key names and their meanings are a contract (scripts and notebooks write such files):

    name: penguins            # optional, defaults to the folder name
    slug: null                # Kaggle slug for download/submit; optional
    train: train.csv          # paths relative to the data folder
    test: test.csv
    sample_submission: sample_submission.csv   # optional
    id: id                    # optional: the sample submission's first column
    target: species           # optional: the sample submission's other column
    task: auto                # regression | binary | multiclass | auto (from the target values)
    metric: accuracy          # rmse, mae, rmsle, r2, accuracy, auc, logloss, f1, qwk, ...
    positive: bad             # binary: the class whose probability is submitted (optional)
    categorical: []           # optional overrides of the inferred column types
    drop: []                  # optional columns to ignore
    defaults: {...}           # optional: config sections (cv, features, model, ...) as in
    search: {...}             # defaults.yaml, and the tuning search space
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

from pipeline.config import load_yaml
from pipeline.config.hints import coerce, hints
from pipeline.errors import ConfigError
from pipeline.io import check_name
from pipeline.model.metrics import METRICS

SPEC_FILE = "competition.yaml"


@dataclass
class CompetitionSpec:
    """competition.yaml's keys, typed: the file is checked by the same type-hint path as every
    config key (pipeline.config.hints), so a wrong value gets the same one-line message."""

    name: str
    train: str = "train.csv"
    test: str = "test.csv"
    slug: str | None = None
    title: str | None = None
    sample_submission: str | None = None
    id: str | None = None
    target: str | None = None
    task: Literal["auto", "regression", "binary", "multiclass"] = "auto"
    metric: Annotated[str, METRICS] | None = None
    positive: Any = None
    categorical: list[str] = field(default_factory=list)
    drop: list[str] = field(default_factory=list)
    defaults: dict = field(default_factory=dict)
    search: dict = field(default_factory=dict)
    folder: Path = Path(".")  # the folder holding competition.yaml

    @property
    def path(self) -> Path:
        return self.folder / SPEC_FILE


KEYS = [f.name for f in fields(CompetitionSpec) if f.name != "folder"]


def spec_path(name: str) -> Path | None:
    """The competition.yaml that `name` points at: a file, a folder holding one, or a folder
    of that name under competitions/ (of the current folder, or of this repository); None
    when `name` is none of these."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml"):
        return path
    if (path / SPEC_FILE).is_file():
        return path / SPEC_FILE
    if "/" in name:
        return None
    here = Path("competitions") / name / SPEC_FILE  # where pipeline.new writes by default
    bundled = Path(__file__).resolve().parents[2] / "competitions" / name / SPEC_FILE
    return next((p for p in (here, bundled) if p.is_file()), None)


def load_spec(path: Path) -> CompetitionSpec:
    where = str(path)
    if not path.exists():
        raise ConfigError(f"{where} does not exist (a competition.yaml file).")
    raw = load_yaml(path, "Competition file")
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} must hold a mapping of keys such as train, test, target.")
    unknown = [k for k in raw if k not in KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r}; valid keys: {', '.join(KEYS)}.")
    data = {k: v for k, v in raw.items() if v is not None or k in ("slug", "positive")}
    data.setdefault("name", path.resolve().parent.name)
    types = hints(CompetitionSpec)
    for key, value in data.items():
        if value is not None:  # null: the key's default (slug, positive: none)
            data[key] = coerce(value, types[key], f"{where}: {key}")
    # the name and slug become folder names (runs/<name>/, data/<slug>/): never a path
    named = "name" if raw.get("name") is not None else "name (its folder's name; set name:)"
    check_name(data["name"], f"{where}: {named}")
    if data.get("slug") is not None:
        check_name(data["slug"], f"{where}: slug")
    return CompetitionSpec(**data, folder=path.resolve().parent)
