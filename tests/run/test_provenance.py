"""provenance.collect: versions, git state, platform and data hashes of a run, fast."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time

import numpy as np
import pandas as pd
import pytest

from pipeline.run import provenance


def test_covid_files_are_hashed_like_hashlib_does(covid, covid_dir):
    started = time.perf_counter()
    record = provenance.collect(covid_dir, covid.files)
    assert time.perf_counter() - started < 2  # every run calls it
    files = record["data"]["files"]
    assert sorted(files) == sorted(covid.files)
    for name in covid.files:
        data = (covid_dir / name).read_bytes()
        assert files[name] == {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        assert files[name]["sha256"] == covid.sha256[name]
    assert record["data"]["dir"] == str(covid_dir.resolve())


def test_versions_platform_and_json(covid, covid_dir):
    record = provenance.collect(covid_dir, covid.files)
    packages = record["packages"]
    assert packages["numpy"] == np.__version__ and packages["pandas"] == pd.__version__
    assert set(packages) >= {"torch", "lightning", "optuna", "sklearn", "kaggle"}
    assert record["python"].count(".") == 2
    assert record["platform"]["cpu_count"] == os.cpu_count()
    assert json.loads(json.dumps(record)) == record


def test_a_package_that_is_not_installed_is_none(monkeypatch):
    monkeypatch.setitem(provenance.PACKAGES, "kaggle", "no-such-distribution-xyz")
    assert provenance.package_versions()["kaggle"] is None


def test_large_files_get_size_and_mtime_only(tmp_path):
    (tmp_path / "big.npy").write_bytes(b"x" * 1000)
    (tmp_path / "small.csv").write_bytes(b"id\n1\n")
    files = provenance.collect(tmp_path, ["big.npy", "small.csv", "gone.csv"], hash_limit=100)
    big = files["data"]["files"]["big.npy"]
    assert big["size"] == 1000 and big["sha256"] is None and "mtime" in big
    assert "size and mtime only" in big["note"]
    assert files["data"]["files"]["small.csv"]["sha256"] == hashlib.sha256(b"id\n1\n").hexdigest()
    assert files["data"]["files"]["gone.csv"] == {"exists": False}


def test_the_repository_commit_is_recorded():
    state = provenance.git_state()
    if state is None:
        pytest.skip("not running from a git checkout")
    head = subprocess.run(
        ["git", "-C", str(provenance.REPO_ROOT), "rev-parse", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert state["commit"] == head and isinstance(state["dirty"], bool)


def test_outside_git_it_is_none(tmp_path):
    assert provenance.git_state(tmp_path) is None


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_uncommitted_changes_are_flagged(tmp_path):
    def git(*args):
        subprocess.run(
            ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@t", *args],
            check=True,
            capture_output=True,
        )

    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    clean = provenance.git_state(tmp_path)
    assert clean is not None and clean["dirty"] is False and len(clean["commit"]) == 40
    (tmp_path / "a.txt").write_text("2")
    assert provenance.git_state(tmp_path)["dirty"] is True
