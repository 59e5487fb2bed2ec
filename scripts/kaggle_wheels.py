"""Wheels of this project and its dependencies, for a Kaggle code competition (internet off).

Code competitions run the notebook without internet, so `pip install` can only read files you
attached. Build the folder once, upload it as a Kaggle dataset, attach it to the notebook:

    python scripts/kaggle_wheels.py --dataset <you>/kaggle-pipeline-wheels
    kaggle datasets create -p dist/kaggle-wheels        # the first time
    kaggle datasets version -p dist/kaggle-wheels -m "new code"   # after that

and in the competition's notebook (notebooks/quickstart.ipynb: set WHEELS):

    pip install --no-index --find-links /kaggle/input/kaggle-pipeline-wheels kaggle-pipeline

By default the folder holds every dependency except torch (Kaggle's image has a CUDA torch; a
torch wheel is 1-3 GB), as wheels for Kaggle's Linux x86-64 and Python (--python-version,
3.11); pip installs only those the image lacks or has in a version that does not fit. Run it
in a Kaggle notebook with internet on and `--missing-only` to keep only what that image lacks.
`--project-only` builds the project's wheel alone.
"""

from __future__ import annotations

import argparse
import email.parser
import json
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = "kaggle-pipeline"
# Kaggle's image: glibc 2.35 (Ubuntu 22.04), x86-64; pip expands manylinux2014 to the older tags
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux2014_x86_64"]
# shipped by Kaggle and Colab with their CUDA build; a CPU wheel from here would replace it
TORCH = re.compile(r"^(torch|triton|nvidia-.*|cuda-.*)$")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python scripts/kaggle_wheels.py",
        description="A folder of wheels to install this project on Kaggle without internet.",
    )
    add = parser.add_argument
    add("--out", type=Path, default=ROOT / "dist" / "kaggle-wheels", help="the wheel folder")
    add("--python-version", default="3.11", help="the target's Python (default 3.11, Kaggle's)")
    add(
        "--missing-only",
        action="store_true",
        help="only what this environment lacks (run it where the notebook will run)",
    )
    add("--with-torch", action="store_true", help="also torch and its CUDA libraries")
    add("--extras", action="append", default=[], help="an extra to include, e.g. tensorboard")
    add("--project-only", action="store_true", help="the project's wheel alone")
    add(
        "--no-build-isolation",
        action="store_true",
        help="build the project with the setuptools installed here (no download)",
    )
    add("--dataset", help="OWNER/SLUG: write dataset-metadata.json for `kaggle datasets create`")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"3\.\d+", args.python_version):
        parser.error(f"--python-version must look like 3.11; got {args.python_version!r}")
    if args.dataset is not None and not re.fullmatch(r"[\w-]+/[\w-]{6,50}", args.dataset):
        parser.error(f"--dataset must be OWNER/SLUG (slug: 6-50 letters); got {args.dataset!r}")
    return args


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", *args]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"error: pip {args[0]} failed (exit {done.returncode}):\n{tail}")


def build_project(out: Path, isolated: bool) -> Path:
    """The project's own wheel (pure Python: pipeline/ and competitions/) into `out`, built
    from a copy of the sources so that the checkout gets no build/ or egg-info folders."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    with tempfile.TemporaryDirectory() as tmp:
        src, dist = Path(tmp) / "src", Path(tmp) / "dist"
        for name in ("pipeline", "competitions"):
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        for name in ("pyproject.toml", "README.md"):
            shutil.copy2(ROOT / name, src / name)
        flags = [] if isolated else ["--no-build-isolation"]
        pip("wheel", "--no-deps", "--quiet", *flags, "--wheel-dir", str(dist), str(src))
        (built,) = dist.glob("*.whl")
        for old in out.glob(f"{built.name.split('-')[0]}-*.whl"):  # one version of the project
            old.unlink()
        return Path(shutil.move(built, out / built.name))


def requirements(wheel: Path, extras: list[str]) -> list[str]:
    """The wheel's Requires-Dist, with those of the chosen extras."""
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(zf.read(name).decode())
    out = []
    for req in meta.get_all("Requires-Dist") or []:
        spec, _, marker = req.partition(";")
        wanted = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", marker)
        if wanted is None or wanted[1] in extras:
            out.append(spec.strip())
    return out


def resolve(reqs: list[str], args: argparse.Namespace) -> list[tuple[str, str]]:
    """(name, version) of every package pip would install for `reqs`: for the target platform
    from scratch, or (--missing-only) on top of this environment."""
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        flags = ["--dry-run", "--quiet", "--report", str(report)]
        if not args.missing_only:
            flags += ["--ignore-installed", *target_flags(args), "--target", str(Path(tmp) / "t")]
        pip("install", *flags, *reqs)
        installs = json.loads(report.read_text())["install"]
    return [(i["metadata"]["name"], i["metadata"]["version"]) for i in installs]


def target_flags(args: argparse.Namespace) -> list[str]:
    version = args.python_version.replace(".", "")
    flags = ["--only-binary=:all:", "--python-version", version, "--implementation", "cp"]
    for platform in PLATFORMS:
        flags += ["--platform", platform]
    return flags


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    wheel = build_project(args.out, isolated=not args.no_build_isolation)
    print(f"{wheel.name}: the project (pipeline/, competitions/)")
    if not args.project_only:
        packages = resolve(requirements(wheel, args.extras), args)
        skipped = [f"{n}=={v}" for n, v in packages if TORCH.match(n.lower())]
        wanted = [f"{n}=={v}" for n, v in packages if not TORCH.match(n.lower())]
        if args.with_torch:
            wanted, skipped = wanted + skipped, []
        if wanted:
            flags = [] if args.missing_only else target_flags(args)
            pip("download", "--no-deps", "--quiet", "--dest", str(args.out), *flags, *wanted)
        print(f"{len(wanted)} dependencies as wheels", end="")
        print(f"; left out (the notebook's own): {', '.join(skipped)}" if skipped else "")
    if args.dataset:
        meta = {"title": args.dataset.split("/")[1], "id": args.dataset, "licenses": []}
        meta["licenses"].append({"name": "other"})
        (args.out / "dataset-metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
    size = sum(p.stat().st_size for p in args.out.glob("*.whl")) / 2**20
    print(f"{args.out}/: {len(list(args.out.glob('*.whl')))} wheels, {size:.1f} MiB")
    print(
        f"next: kaggle datasets create -p {args.out}  (dataset-metadata.json: --dataset); in "
        f"the notebook: pip install --no-index --find-links /kaggle/input/<dataset> {PROJECT}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
