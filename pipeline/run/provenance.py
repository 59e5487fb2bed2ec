"""What produced a run: package versions, the git commit, the platform, the data files' hashes.

`collect(data_dir, files)` returns a JSON-ready dict that a run saves as provenance.json. It is
fast: versions come from package metadata (nothing is imported), git gets two short commands
under a deadline, and files larger than HASH_LIMIT are recorded by size and mtime only.
`recorded_data_dir(file, files)` reads the data folder back for a file of a run folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

HASH_LIMIT = 256 * 2**20  # bytes; hashing more would make every run start seconds later
PACKAGES = {  # key in provenance.json -> distribution name
    "kaggle-pipeline": "kaggle-pipeline",
    "torch": "torch",
    "lightning": "lightning",
    "optuna": "optuna",
    "sklearn": "scikit-learn",
    "pandas": "pandas",
    "numpy": "numpy",
    "kaggle": "kaggle",
}
REPO_ROOT = Path(__file__).resolve().parents[2]
GIT_TIMEOUT = 5.0  # seconds; a slow network file system must not hold a run up


def collect(
    data_dir: str | os.PathLike,
    files: Iterable[str],
    hash_limit: int = HASH_LIMIT,
    repo: str | os.PathLike = REPO_ROOT,
) -> dict:
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": sys.argv,
        "python": platform.python_version(),
        "packages": package_versions(),
        "git": git_state(repo),
        "platform": platform_info(),
        "data": data_files(data_dir, files, hash_limit),
    }


def package_versions() -> dict[str, str | None]:
    """Installed versions; None for a package that is not installed (kaggle is optional)."""
    versions = {}
    for key, dist in PACKAGES.items():
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = None
    return versions


def git_state(repo: str | os.PathLike = REPO_ROOT) -> dict | None:
    """{'commit', 'dirty'} of the checkout; None outside git (an installed wheel, no git)."""
    commit = _git(repo, "rev-parse", "HEAD")
    if commit is None:
        return None
    status = _git(repo, "status", "--porcelain")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _git(repo: str | os.PathLike, *args: str) -> str | None:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def platform_info() -> dict:
    info = {
        "system": platform.platform(),
        "machine": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
    }
    torch = sys.modules.get("torch")  # only if the run already imported it: no import cost
    if torch is not None:
        cuda = torch.cuda.is_available()
        info["cuda"] = torch.version.cuda if cuda else None
        info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    return info


def data_files(data_dir: str | os.PathLike, files: Iterable[str], hash_limit: int) -> dict:
    data_dir = Path(data_dir)
    entries = {}
    for rel in files:
        path = data_dir / rel
        if not path.is_file():
            entries[rel] = {"exists": False}
            continue
        st = path.stat()
        entry: dict = {"size": st.st_size}
        if st.st_size > hash_limit:
            entry["sha256"] = None
            entry["mtime"] = datetime.fromtimestamp(st.st_mtime, timezone.utc).isoformat()
            entry["note"] = (
                f"larger than {_megabytes(hash_limit)}: size and mtime only, not hashed"
            )
        else:
            entry["sha256"] = sha256_of(path)
        entries[rel] = entry
    return {"dir": str(data_dir.resolve()), "files": entries}


def _megabytes(n: int) -> str:
    return f"{n / 2**20:g} MB" if n >= 2**20 else f"{n} bytes"


def sha256_of(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def recorded_data_dir(file: str | os.PathLike, files: Iterable[str]) -> Path | None:
    """The data folder that the provenance.json of the run holding `file` names (the file's
    folder, or the one above: a tuning run's ensemble/), when it is still a folder and the run
    read the same competition's files (`files`); else None."""
    for folder in list(Path(file).resolve().parents)[:2]:
        try:
            info = json.loads((folder / "provenance.json").read_text(encoding="utf-8"))
            data = info["data"]
            recorded, read = Path(data["dir"]), set(data["files"])
        except (OSError, ValueError, TypeError, KeyError):
            continue
        return recorded if read == set(files) and recorded.is_dir() else None
    return None
