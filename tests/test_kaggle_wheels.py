"""scripts/kaggle_wheels.py: the wheel folder a Kaggle code competition installs from without
internet. Here without network: the project's own wheel, installed from the folder with pip's
--no-index --find-links, then imported and run from where it was installed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_script():
    spec = importlib.util.spec_from_file_location(
        "kaggle_wheels", ROOT / "scripts/kaggle_wheels.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    script = load_script()
    assert script.main(["--project-only", "--no-build-isolation", "--out", str(out)]) == 0
    return out


@pytest.mark.slow
def test_the_wheel_installs_offline_and_trains(wheels, demo_dir, tmp_path):
    (wheel,) = wheels.glob("kaggle_pipeline-*-py3-none-any.whl")
    site = tmp_path / "site"
    env = {**os.environ, "PIP_CONFIG_FILE": os.devnull}  # only the folder: no index, no links
    env = {k: v for k, v in env.items() if not k.startswith("PIP_") or k == "PIP_CONFIG_FILE"}
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index"]
        + ["--find-links", str(wheels), "--no-deps", "--target", str(site), "kaggle-pipeline"],
        check=True,
        env=env,
    )
    assert (site / "competitions" / "covid" / "defaults.yaml").is_file()
    assert (site / "pipeline" / "runs" / "__main__.py").is_file()
    run_env = {**env, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import pipeline, competitions; print(pipeline.__file__)"],
        capture_output=True,
        text=True,
        env=run_env,
        cwd=tmp_path,
        check=True,
    )
    assert where.stdout.strip() == str(site / "pipeline" / "__init__.py")
    out = tmp_path / "run"
    args = ["demo", "--data-dir", str(demo_dir), "--out", str(out), "--quiet", "cv.folds=2"]
    subprocess.run(
        [sys.executable, "-m", "pipeline.train", *args, "train.epochs=2"],
        env=run_env,
        cwd=tmp_path,
        check=True,
    )
    assert (out / "submission.csv").is_file()


@pytest.mark.slow
def test_the_wheel_declares_the_dependencies_and_the_chosen_extras(wheels):
    script = load_script()
    (wheel,) = wheels.glob("kaggle_pipeline-*.whl")
    names = [r.split(">")[0].split("=")[0].split("<")[0] for r in script.requirements(wheel, [])]
    assert {"torch", "lightning", "optuna", "scikit-learn", "kaggle"} <= set(names)
    assert "tensorboard" not in names and "wandb" not in names
    with_tb = script.requirements(wheel, ["tensorboard"])
    assert any(r.startswith("tensorboard") for r in with_tb) and len(with_tb) == len(names) + 1


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--python-version", "311"], "--python-version must look like 3.11; got '311'"),
        (["--dataset", "no-slash"], "--dataset must be OWNER/SLUG"),
    ],
)
def test_bad_options_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        load_script().main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "left_out"),
    [("torch", True), ("nvidia-cublas-cu12", True), ("triton", True), ("torchmetrics", False)],
)
def test_torch_and_its_cuda_libraries_are_left_to_the_notebook(name, left_out):
    assert bool(load_script().TORCH.match(name)) is left_out
