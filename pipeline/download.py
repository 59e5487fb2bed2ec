"""python -m pipeline.download <competition> [--data-dir DIR] [--force] [--timeout S]

Fetch a competition's files from Kaggle into data/<slug>/ (or --data-dir), extract the archive
(nested folders and inner zips too) and check every file the competition expects, by sha256
where the competition knows it. Nothing reaches the data folder until the whole download is
extracted and checked, so a damaged archive never replaces good files. Run it again and it
downloads nothing while the files are present and valid; --force downloads anyway. A built-in
competition (demo) writes its own files and needs no download.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from pipeline.cli import ArgumentParser, add_timeout, competition_of, run_cli
from pipeline.competition.base import Competition
from pipeline.errors import DataError
from pipeline.interrupts import keeping
from pipeline.kaggle import client as kaggle_io
from pipeline.kaggle.archive import install, locate, unpack
from pipeline.run.provenance import sha256_of

STAGING_PREFIX = ".download-"  # hidden folder beside the data folder: renames stay on one disk


def problems(competition: Competition, data_dir: Path) -> list[str]:
    """What is missing or wrong in data_dir, one phrase per file; [] when complete and valid."""
    found = []
    for rel in competition.files:
        path = Path(data_dir) / rel
        if not path.is_file():
            found.append(f"{rel} is missing")
        elif rel in competition.sha256 and sha256_of(path) != competition.sha256[rel]:
            found.append(f"{rel} differs from the known file (sha256)")
    return found


def is_builtin(competition: Competition, data_dir: Path) -> bool:
    """True for a built-in competition (no Kaggle download); its prepare_data writes the files."""
    if competition.needs_download:
        return False
    competition.prepare_data(Path(data_dir))
    return True


def download(
    competition: Competition,
    data_dir: Path,
    force: bool = False,
    timeout: float = kaggle_io.DOWNLOAD_TIMEOUT,
    say: Callable[[str], None] = print,
) -> str:
    """Make data_dir hold the competition's valid files; returns what was done, in a word:
    'builtin', 'present' or 'downloaded'."""
    data_dir = Path(data_dir)
    n = len(competition.files)
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} exists and is not a folder; choose another path.")
    had_files = data_dir.is_dir() and all((data_dir / f).is_file() for f in competition.files)
    try:
        if is_builtin(competition, data_dir):
            verb = "found" if had_files else "wrote"
            say(
                f"{competition.name} needs no download: its files are built in ({verb} {n} "
                f"files in {data_dir}/)."
            )
            return "builtin"
        todo = problems(competition, data_dir)
        if competition.files and not todo and not force:
            checked = sum(rel in competition.sha256 for rel in competition.files)
            say(
                f"All {n} files of {competition.slug} are present and valid in {data_dir}/ "
                f"({checked} checked by sha256); nothing downloaded (add --force to download "
                "again)."
            )
            return "present"
        if todo and len(todo) < n:
            say(f"{data_dir}/: {'; '.join(todo)}; downloading again.")
        credentials = kaggle_io.find_credentials()
        say(f"Downloading {competition.slug} from Kaggle into {data_dir}/ ...")
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(data_dir)
        staging = Path(
            tempfile.mkdtemp(prefix=f".{data_dir.name}{STAGING_PREFIX}", dir=data_dir.parent)
        )
        try:
            archive_dir, tree = staging / "archive", staging / "tree"
            archive_dir.mkdir()
            fetched = kaggle_io.download_competition(
                competition.slug, archive_dir, timeout, credentials
            )
            if not fetched:
                raise DataError(f"Kaggle sent no files for {competition.slug}; try again.")
            unpack(fetched, tree)
            placed = locate(competition.files, tree)
            verify(competition, placed)
            install(placed, data_dir)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    except OSError as exc:
        error = kaggle_io.disk_error(exc, data_dir)
        if error is None:
            raise
        raise error from None
    checked = sum(rel in competition.sha256 for rel in placed)
    say(
        f"Downloaded {competition.slug}: {len(placed)} files in {data_dir}/, all expected files "
        f"present ({checked} checked by sha256)."
    )
    return "downloaded"


def _remove_stale_staging(data_dir: Path) -> None:
    """Leftovers of a download that was killed or timed out (its thread may have written on)."""
    for old in data_dir.parent.glob(f".{data_dir.name}{STAGING_PREFIX}*"):
        shutil.rmtree(old, ignore_errors=True)


def verify(competition: Competition, placed: dict[str, Path]) -> None:
    for rel, path in placed.items():
        known = competition.sha256.get(rel)
        if known is None:
            continue
        got = sha256_of(path)
        if got != known:
            raise DataError(
                f"{rel} from the download has sha256 {got[:12]}..., expected {known[:12]}...: "
                "the file is damaged or the competition changed it. Nothing was installed; "
                "run the download again."
            )


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m pipeline.download",
        description="Download and check a competition's files from Kaggle (needs a token).",
    )
    parser.add_argument("competition", help="competition name, e.g. covid, timit, demo")
    parser.add_argument(
        "--data-dir", type=Path, help="where the files go (default: data/<kaggle-slug>/)"
    )
    parser.add_argument(
        "--force", action="store_true", help="download even when valid files are present"
    )
    add_timeout(parser, kaggle_io.DOWNLOAD_TIMEOUT, "the whole download")
    return parser


def main(argv: list[str] | None = None) -> int:
    def run() -> int:
        args = build_parser().parse_args(argv)
        competition, data_dir = competition_of(args)
        # files reach data_dir whole, by rename, only after the whole download was checked
        with keeping(
            f"the download did not finish; no file in {data_dir}/ is partly written "
            "(run the same command to download again)"
        ):
            download(competition, data_dir, force=args.force, timeout=args.timeout)
        return 0

    return run_cli(run)


if __name__ == "__main__":
    raise SystemExit(main())
