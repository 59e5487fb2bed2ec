"""python -m bench runs both paths on the same data and ends with the ratio line."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import bench.__main__ as bench


def test_bench_times_both_paths_and_prints_the_ratio_last(covid_dir, capsys):
    argv = [
        "--data",
        "covid",
        "--data-dir",
        str(covid_dir),
        "--folds",
        "2",
        "--epochs",
        "2",
        "--repeats",
        "1",
        "--device",
        "cpu",
    ]
    assert bench.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    timed = [line for line in lines if " s per epoch (all folds)" in line]
    assert [line.split(":")[0].strip() for line in timed] == [
        "common template",
        "template, extras off",
        "project (engine=fast)",
    ]
    for line in timed:  # every path trained the requested epochs and scored its folds
        assert "epochs [2, 2]" in line and re.search(r"rmse \d+\.\d{4} ± \d+\.\d{4}", line)
    assert re.fullmatch(
        r"ratio \(seconds per epoch, common template / project\): \d+\.\dx", lines[-1]
    )


def test_bench_refuses_covid_without_its_files(capsys):
    assert bench.main(["--data", "covid"]) != 0
    assert "covid cannot generate data; pass --data-dir" in capsys.readouterr().err


def test_bench_with_several_seeds_averages_the_scores(covid_dir, capsys):
    argv = [
        "--data",
        "covid",
        "--data-dir",
        str(covid_dir),
        "--folds",
        "2",
        "--epochs",
        "1",
        "--repeats",
        "1",
        "--seeds",
        "2",
        "--device",
        "cpu",
    ]
    assert bench.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    timed = [line for line in lines if " s per epoch (all folds)" in line]
    assert len(timed) == 3
    assert all(re.search(r"rmse \d\.\d{4} ± \d\.\d{4} over 2 seeds$", line) for line in timed)


@pytest.mark.parametrize("flag", ["--seeds", "--repeats", "--folds"])
def test_bench_refuses_counts_below_the_least_that_makes_sense(flag, capsys):
    assert bench.main(["--data", "covid", flag, "0"]) != 0
    assert f"{flag} must be an integer >=" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="on a GPU the script runs its checks")
def test_the_gpu_check_script_refuses_a_machine_without_cuda():
    script = Path(__file__).resolve().parents[2] / "scripts" / "gpu_check.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(script)], capture_output=True, text=True, env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "scripts/gpu_check.sh needs a CUDA GPU: torch.cuda.is_available() is False here."
    )


def test_bench_times_the_competitions_bench_recipe(tmp_path, capsys):
    from competitions.timit.generate import generate

    generate(tmp_path, train_rows=2000, test_rows=100, seed=0)
    argv = [
        "--data",
        "timit",
        "--data-dir",
        str(tmp_path),
        "--folds",
        "2",
        "--epochs",
        "1",
        "--repeats",
        "1",
        "--device",
        "cpu",
        "--batch",
        "256",
    ]
    assert bench.main(argv) == 0  # the default sequence model does not stack; the MLP does
    out = capsys.readouterr().out
    assert "model mlp [1024, 1024, 512, 256]" in out and "project (engine=fast)" in out


def test_the_template_can_be_timed_on_fewer_folds_and_scaled(covid_dir, capsys):
    argv = ["--data", "covid", "--data-dir", str(covid_dir), "--folds", "3", "--epochs", "1",
            "--repeats", "1", "--device", "cpu", "--template-folds", "1"]  # fmt: skip
    assert bench.main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    template = next(line for line in lines if line.strip().startswith("common template"))
    assert "epochs [1]," in template  # one fold timed
    assert "timed on 1 of 3 folds and their seconds scaled by 3" in lines[-3]
    assert bench.main([*argv[:-1], "4"]) != 0
    assert "--template-folds must be at most --folds (3); got 4." in capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--size", "huge"], r"^error: argument --size: invalid choice: 'huge' \(choose from "),
        pytest.param(
            ["--device", "gpu"],
            r"^error: --device gpu needs a CUDA GPU, and PyTorch sees none here",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is there"),
        ),
    ],
)
def test_bad_command_lines_are_one_line(argv, message, capsys):
    assert bench.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and re.search(message, err), err
