"""The study's plots: intermediate values one panel per step layout with a legend by state and
the best trial, parallel coordinates with labels that fit."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import optuna  # noqa: E402
import pytest  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from pipeline.tune.plots import (  # noqa: E402
    LABEL_CHARS,
    plot_intermediate,
    plot_parallel,
    save_plots,
    short_names,
)
from pipeline.tune.pruners import FOLD_MEAN, PER_FOLD  # noqa: E402

STRIDE = 4


@pytest.fixture
def study():
    """Trials 0-2 trained fold by fold (steps k * STRIDE + e), 3-5 together (steps = epochs);
    minimize: trial 1 (0.5) is the best, trial 4 (0.7) the best of the fast engine's."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(study_name="plots", direction="minimize")
    study.set_user_attr("stride", STRIDE)
    runs = [  # (layout, folds x epochs reported, final value or None = pruned)
        (PER_FOLD, 2, 0.9),
        (PER_FOLD, 2, 0.5),
        (PER_FOLD, 1, None),
        (FOLD_MEAN, 1, 0.8),
        (FOLD_MEAN, 1, 0.7),
        (FOLD_MEAN, 1, None),
    ]
    choices = ["[a]", "[tested_positive, illness, behaviour]"]
    for i, (layout, folds, value) in enumerate(runs):
        # fixed parameters: a sampled study could draw one choice for all six trials
        study.enqueue_trial(
            {
                "optim.lr": 10 ** -(1 + i / 2),
                "features.groups": choices[i % 2],
                "sched.warmup_fraction": i / 20,
            }
        )
        t = study.ask()
        t.suggest_float("optim.lr", 1e-4, 1e-1, log=True)
        t.suggest_categorical("features.groups", choices)
        t.suggest_float("sched.warmup_fraction", 0.0, 0.3)
        t.set_user_attr("steps", layout)
        for k in range(folds):
            for e in range(STRIDE if value is not None else 2):
                t.report(1.0 + i / 10 - e / 10, k * STRIDE + e)
        study.tell(t, value, state=TrialState.PRUNED if value is None else TrialState.COMPLETE)
    yield study
    plt.close("all")


def test_intermediate_values_one_panel_per_step_layout_with_a_legend(study):
    fig = plot_intermediate(study, "rmse")
    per_fold, fold_mean = fig.axes
    assert per_fold.get_xlabel() != fold_mean.get_xlabel()
    assert "fold" in per_fold.get_xlabel() and "mean over folds" in fold_mean.get_xlabel()
    assert [t.get_text() for t in per_fold.get_xticklabels()] == ["fold 1", "fold 2"]
    legend = [t.get_text() for t in per_fold.get_legend().get_texts()]
    assert legend == ["best trial 1 (rmse 0.5)", "complete (1)", "pruned (1)"]
    legend = [t.get_text() for t in fold_mean.get_legend().get_texts()]
    assert legend[0] == "best of these: 4 (rmse 0.7)"  # the study's best is in the other panel
    # a curve never joins two folds: every line stays inside one fold's steps
    for line in per_fold.get_lines():
        xs = [x for x in line.get_xdata()]
        if len(xs) > 1:
            assert len({(x - 1) // STRIDE for x in xs}) == 1, xs
    assert max(max(line.get_xdata()) for line in fold_mean.get_lines()) == STRIDE  # 1-based


def test_parallel_coordinate_labels_are_short_and_the_figure_widens_with_params(study):
    fig = plot_parallel(study, "rmse")
    ax = fig.axes[0]
    names = [t.get_text() for t in ax.get_xticklabels()]
    assert names == ["rmse", "groups", "lr", "warmup_fraction"]  # Optuna cut it to 'warmup_f...'
    assert all(t.get_rotation() == 30 for t in ax.get_xticklabels())
    cats = [t.get_text() for a in fig.axes[1:] for t in a.get_yticklabels()]
    assert "[tested…haviour]" in cats and max(len(c) for c in cats if "$" not in c) <= LABEL_CHARS
    assert fig.get_size_inches()[0] >= 10


@pytest.mark.parametrize(
    "names, short",
    [
        (["optim.lr", "model.dropout"], ["lr", "dropout"]),
        (["optim.lr", "sched.lr", "model.hidden"], ["optim.lr", "sched.lr", "hidden"]),
    ],
)
def test_short_names_keep_a_parameter_apart_from_its_namesakes(names, short):
    assert short_names(names) == short


def test_all_plots_are_written_as_png(study, tmp_path):
    assert set(save_plots(study, tmp_path, "rmse").values()) == {"ok"}
    for png in tmp_path.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(tmp_path.glob("*.png"))) == 4
