"""Kaggle's files as they arrive: the zip that the website's Download button and `kaggle
competitions download` give, extracted safely (no path may leave the folder, nested zips and
folders too), checked, and moved into place whole.

`unpacked(data_dir, files)` is what every command that reads a competition's files calls: a
folder that holds the files is used as it is; a zip file given as the folder, or a folder that
holds the competition's zip instead of its files, is extracted once next to the zip (into the
folder named after it, or the folder that holds it) and said in one line; the next run finds
the files and extracts nothing. pipeline.download uses the same extraction for what it fetches.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from pathlib import Path

from pipeline.errors import DataError

MAX_ARCHIVE_DEPTH = 3  # zips inside zips inside zips
STAGING = ".unzip-"  # hidden folder beside the target: renames stay on one disk


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def unpacked(
    data_dir: str | os.PathLike,
    files: Iterable[str],
    names: Iterable[str] = (),
    say: Callable[[str], None] = _say,
) -> Path:
    """The folder to read the competition's `files` from (module comment). `files` empty (a
    competition not known yet, pipeline.new): any CSV file counts as the files. `names`: the
    competition's slug and name, to choose its zip among several."""
    data_dir, files = Path(data_dir), tuple(files)
    if data_dir.is_file() and _is_zip(data_dir):
        archive, target = data_dir, data_dir.with_suffix("")
        if target.exists() and not target.is_dir():
            raise DataError(
                f"{archive} would be extracted into {target}, which is a file; move one of them."
            )
    elif data_dir.is_dir() and not _complete(data_dir, files):
        archive = _choose_zip(data_dir, names)
        if archive is None:
            return data_dir
        target = data_dir
    else:
        return data_dir
    if target.is_dir() and _complete(target, files):
        return target  # extracted by an earlier run
    placed = extract_into(archive, target, files)
    shown = f"{target}/" if target != archive.parent else f"{target}/ (beside it)"
    say(
        f"extracted {archive.name}: {len(placed)} file(s) into {shown}, once; the zip is kept "
        "and later runs read the files."
    )
    return target


def _complete(folder: Path, files: tuple[str, ...]) -> bool:
    if files:
        return all((folder / f).is_file() for f in files)
    return any(folder.glob("*.csv"))


def _is_zip(path: Path) -> bool:
    return path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)


def _choose_zip(folder: Path, names: Iterable[str]) -> Path | None:
    """The folder's zip: the only one, or the one named after the competition."""
    zips = sorted(p for p in folder.glob("*.zip") if p.is_file())
    if len(zips) <= 1:
        return zips[0] if zips else None
    named = [p for p in zips if p.stem in set(names)]
    if len(named) == 1:
        return named[0]
    raise DataError(
        f"{folder} holds {len(zips)} zip files ({', '.join(p.name for p in zips[:4])}) and not "
        "the competition's files; pass the competition's zip itself as --data-dir."
    )


def extract_into(archive: Path, target: Path, files: tuple[str, ...]) -> list[Path]:
    """Extract the zip beside `target`, find the expected files, and move them (with what
    else shares their folder in the archive) into `target`; files already there are kept.
    Returns the files placed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}{STAGING}", dir=target.parent))
    try:
        tree = staging / "tree"
        unpack([archive], tree, keep=True)
        placed = locate(files, tree, archive.name)
        fresh = {rel: p for rel, p in placed.items() if not (target / rel).exists()}
        install(fresh, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return [target / rel for rel in fresh]


def unpack(fetched: list[Path], tree: Path, keep: bool = False) -> None:
    """Extract the zips (and zips they hold) into tree; other files are moved as they are
    (`keep`: the given zips stay where they are, as a user's download should)."""
    tree.mkdir(parents=True, exist_ok=True)
    for path in fetched:
        if zipfile.is_zipfile(path) or path.suffix.lower() == ".zip":
            _extract(path, tree)
        elif not keep:
            shutil.move(str(path), tree / path.name)
    for _ in range(MAX_ARCHIVE_DEPTH):
        inner = [p for p in tree.rglob("*.zip") if p.is_file()]
        if not inner:
            break
        for path in inner:  # like `unzip`: the contents land beside the inner zip
            _extract(path, path.parent)
            path.unlink()


def _extract(archive: Path, into: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                parts = Path(info.filename).parts
                if info.filename.startswith(("/", "\\")) or ".." in parts:
                    raise DataError(
                        f"The archive {archive.name} holds an unsafe path {info.filename!r}; "
                        "refusing to extract it."
                    )
            zf.extractall(into)  # reads every member: CRC errors and truncation surface here
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DataError(
            f"The archive {archive.name} is damaged or incomplete ({exc}); nothing was installed "
            "and the data folder is unchanged. Download it again."
        ) from None


def locate(files: tuple[str, ...], tree: Path, what: str = "The download") -> dict[str, Path]:
    """Map each relative path to install to its extracted file.

    An expected file may sit under extra folders (TIMIT's archive nests timit_11/timit_11/):
    it is found by its path suffix, the shallowest match wins. When every expected file sits
    under the same prefix, everything under that prefix is installed, extra files included.
    Without expected files, everything is installed, from under the one folder that holds it
    all if there is one."""
    listed = sorted(p for p in tree.rglob("*") if p.is_file() and p.name != ".DS_Store")
    rel = {p: p.relative_to(tree).as_posix() for p in listed}
    if not files:
        tops = {r.split("/", 1)[0] for r in rel.values()}
        if len(tops) == 1 and all("/" in r for r in rel.values()):
            (top,) = tops
            return {r[len(top) + 1 :]: p for p, r in rel.items()}
        return {r: p for p, r in rel.items()}
    found: dict[str, Path] = {}
    prefixes = set()
    for want in files:
        matches = [p for p in listed if rel[p] == want or rel[p].endswith("/" + want)]
        if not matches:
            continue
        best = min(matches, key=lambda p: len(p.parts))
        found[want] = best
        prefixes.add(rel[best][: len(rel[best]) - len(want)])
    missing = [w for w in files if w not in found]
    if missing:
        held = ", ".join(rel[p] for p in listed[:5]) + (", ..." if len(listed) > 5 else "")
        raise DataError(
            f"{what} lacks {', '.join(missing)} (it holds {held or 'nothing'}); the "
            f"competition's files may have changed. Nothing was installed."
        )
    if len(prefixes) == 1:
        (prefix,) = prefixes
        return {rel[p][len(prefix) :]: p for p in listed if rel[p].startswith(prefix)}
    return found


def install(placed: dict[str, Path], data_dir: Path) -> None:
    """Move the checked files in (renames on one disk: each file appears whole or not at all)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for rel, path in placed.items():
        target = data_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)
