"""Run folders that never mix two runs: a run is written beside its folder, then moved in.

`python -m pipeline.train ... --out runs/covid/a` trains in the hidden sibling
`runs/covid/.a.partial-<pid>/` (Lightning's checkpoints and logs too; DDP workers find it through
PIPELINE_RUN_DIR), writes every file and plot there, then the completion marker `.complete`, and
only then moves the folder to `runs/covid/a`. `--overwrite` replaces an earlier run at that
moment and not before, so a run that fails or is interrupted leaves the old one whole.

What a folder at --out holds decides what happens (`run_state`):
- nothing (or no folder): a new run;
- `.complete` (or, from before the marker existed, metrics.json, the file a run writes last):
  a finished run, replaced only with --overwrite;
- only names a run writes, without the marker: an unfinished run (killed, or from an older
  version), replaced without --overwrite, with one line saying so;
- any other file: not a run's folder, never replaced (--overwrite must not empty a folder of
  your own files).
Moving in: where the system swaps two folders in one step (Linux renameat2 RENAME_EXCHANGE),
the new run and the old one trade places and the old one is deleted. Elsewhere it takes two
renames (the old run to `.a.old-<pid>`, the new one to `a`) and --out is missing between them;
the old run is deleted only after the new one is in place, a failed second rename puts it back,
and what a crash between them leaves (a finished `.a.partial-<pid>` and `.a.old-<pid>`, no
`a`) is put together by the next run of the same --out: the finished run is moved in
(`repair_leftovers`). Other sibling `.a.partial-<pid>` / `.a.old-<pid>` folders of processes
that are gone (kill -9, power loss) are removed by that run, or an `.a.old-<pid>` with no `a`
moved back, with one line each.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from pipeline.errors import UserError
from pipeline.interrupts import deferred, keeping
from pipeline.io import check_out_dir, write_text

MARKER = ".complete"  # written last inside a finished run folder: {"complete": true, ...}
RUN_NAMES = (
    frozenset(  # all that pipeline.run.fit / .report / .blend / Lightning put in a run folder
        {
            MARKER,
            "config.yaml",
            "provenance.json",
            "metrics.json",
            "oof.csv",
            "submission.csv",
            "submission_blend.csv",
            "oof_proba.npy",
            "test_proba.npy",
            "oof_pred.npy",
            "test_pred.npy",
            "blend.png",
            "test_mc_spread.csv",
            "learning_curves.png",
            "checkpoints",
            "logs",
        }
    )
)


def is_run_name(name: str) -> bool:
    """A name a run writes: RUN_NAMES, or a candidate submission beside submission.csv
    (submission_network.csv, submission_<reference>.csv: references are an open registry)."""
    return name in RUN_NAMES or (name.startswith("submission_") and name.endswith(".csv"))


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _is_temporary(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")  # pipeline.io's atomic writes


def run_state(path: str | os.PathLike) -> str:
    """'new', 'complete', 'unfinished' or 'foreign' (see the module's first comment)."""
    path = Path(path)
    if not path.is_dir():
        return "new"
    names = {p.name for p in path.iterdir() if not _is_temporary(p.name)}
    if not names:
        return "new"
    if not all(is_run_name(n) for n in names):
        return "foreign"
    return "complete" if {MARKER, "metrics.json"} & names else "unfinished"


def check_run_dir(path: str | os.PathLike, overwrite: bool) -> str:
    """The state of --out, or UserError when this run may not replace it."""
    path = check_out_dir(path, overwrite=True)  # a file, not a folder, is refused there
    state = run_state(path)
    if state == "foreign":
        raise not_a_run(path)
    if state == "complete" and not overwrite:
        raise UserError(
            f"--out {path} already holds a finished run; choose a new folder or add --overwrite "
            "to replace it (the old run stays until the new one has finished)."
        )
    return state


def not_a_run(path: Path) -> UserError:
    """The refusal for a folder of files no run writes (yours: never replaced)."""
    extra = sorted(p.name for p in path.iterdir() if not is_run_name(p.name))
    shown = ", ".join(extra[:3]) + (", ..." if len(extra) > 3 else "")
    return UserError(
        f"--out {path} holds files that no run writes ({shown}); choose a new folder "
        "(--overwrite replaces only the folder of an earlier run)."
    )


def sibling(path: Path, kind: str, pid: int | None = None) -> Path:
    return path.parent / f".{path.name}.{kind}-{os.getpid() if pid is None else pid}"


@contextmanager
def run_folder(
    path: str | os.PathLike, overwrite: bool, say: Callable[[str], None] = _say
) -> Iterator[Path]:
    """Yield the temporary folder to write a run into; when the block ends without an error,
    mark it complete and move it to `path` (replacing what was there). On an error or an
    interrupt it is removed and `path` stays as it was."""
    target = Path(path)
    check_out_dir(target, overwrite=True)  # a file, not a folder, is refused there
    repair_leftovers(target, say)  # first: a repaired --out is judged like any other
    state = check_run_dir(target, overwrite)
    if state == "unfinished":
        say(f"--out {target} holds an unfinished run (no {MARKER}); this run replaces it.")
    work = sibling(target, "partial")
    try:
        work.mkdir(parents=True)
    except OSError as exc:
        raise UserError(
            f"--out {target}: cannot create {work} ({exc.strerror or exc}); choose a folder "
            "you can write to."
        ) from None
    was = "was not changed" if state != "new" else "was not created"
    try:
        with keeping(f"nothing written; {target} {was}"):
            yield work
        with keeping(f"the run had finished; its files are in {target}"), deferred():
            stamp = datetime.now(timezone.utc).isoformat(timespec="seconds")
            write_text(work / MARKER, json.dumps({"complete": True, "finished": stamp}) + "\n")
            move_in(work, target)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def move_in(work: Path, target: Path) -> None:
    """`work` (finished, with its marker) becomes `target`; the old run is deleted only after
    the new one is in place (the module's first comment). Also for other folders written
    whole beside their place (research.timit.synth)."""
    if not target.exists():
        os.rename(work, target)
        return
    if _exchange(work, target):  # one step: no moment without a run at --out
        shutil.rmtree(work, ignore_errors=True)  # the old run now
        return
    old = sibling(target, "old")
    shutil.rmtree(old, ignore_errors=True)
    os.rename(target, old)
    try:
        os.rename(work, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


RENAME_EXCHANGE = 2  # linux/fs.h
AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders atomically (Linux renameat2); False where the C library, the kernel or
    the filesystem cannot (then nothing was changed)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # glibc before 2.28, musl
        return False
    done = renameat2(AT_FDCWD, os.fsencode(a), AT_FDCWD, os.fsencode(b), RENAME_EXCHANGE)
    return done == 0


def repair_leftovers(target: Path, say: Callable[[str], None] = _say) -> None:
    """Put back together, or remove, the temporary folders of earlier runs of `target` whose
    process is gone; refuse while another live process writes one."""
    for kind in ("partial", "old"):
        for folder in sorted(target.parent.glob(f".{target.name}.{kind}-*")):
            pid = folder.name.rsplit("-", 1)[-1]
            if not pid.isdigit() or not folder.exists():
                continue
            if int(pid) != os.getpid() and alive(int(pid)):
                raise UserError(
                    f"--out {target}: process {pid} is writing a run there ({folder}); wait for "
                    "it to finish or choose another folder (delete that folder if no such run "
                    "is going on)."
                )
            if not target.exists() and (kind == "old" or (folder / MARKER).is_file()):
                os.rename(folder, target)
                say(
                    f"moved {folder} to {target}: the finished run of process {pid}, which "
                    "stopped before it was in place."
                    if kind == "partial"
                    else f"moved {folder} back to {target}: the run that process {pid} was "
                    "replacing when it stopped."
                )
                continue
            shutil.rmtree(folder, ignore_errors=True)
            say(f"removed {folder}: what an unfinished run (process {pid}, gone) left behind.")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True
