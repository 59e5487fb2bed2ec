"""The study's plots as PNG files. Optuna draws them (optuna.visualization.matplotlib); two are
made readable here: the parallel coordinate plot gets short, rotated labels and a figure that
widens with the number of parameters, and the intermediate values are drawn here, because
Optuna's plot puts every trial on one step axis with one legend entry per trial, while the
trials of one study number their steps in up to three ways (pipeline/tune/pruners.py): one
panel per way, lines styled by state (complete, pruned, other) and the best trial highlighted."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import optuna
from optuna.trial import FrozenTrial, TrialState

from pipeline.io import atomic_write
from pipeline.tune.pruners import FOLD_MEAN, FOLD_SCORES, PER_FOLD

LAYOUTS = {  # the trial's `steps` attribute -> x-axis label of its panel
    PER_FOLD: "epoch, fold after fold",
    FOLD_MEAN: "epoch (the folds trained together: mean over folds)",
    FOLD_SCORES: "fold (each fold's score)",
}
LABEL_CHARS = 16  # longer axis labels are cut (…): they would run into the next axis


def plot_intermediate(study: optuna.Study, metric: str):
    """One panel per step layout in the study (see the module docstring); the figure."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    trials = [t for t in study.get_trials(deepcopy=False) if t.intermediate_values]
    groups = {k: [t for t in trials if t.user_attrs.get("steps", PER_FOLD) == k] for k in LAYOUTS}
    groups = {k: ts for k, ts in groups.items() if ts}
    if not groups:
        raise ValueError("no trial reported intermediate values")
    stride = int(study.user_attrs.get("stride") or 0)
    sign = 1.0 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1.0
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, 4.2 * len(groups)), squeeze=False)
    for ax, (layout, group) in zip(axes[:, 0], groups.items()):
        complete = [t for t in group if t.state == TrialState.COMPLETE and _finite(t.value)]
        best = max(complete, key=lambda t: (sign * t.value, -t.number), default=None)
        counts = {"complete": 0, "pruned": 0, "other": 0}
        for t in sorted(group, key=lambda t: t.state == TrialState.COMPLETE):  # complete on top
            if t is not best:  # counted and drawn apart
                counts[_kind(t)] += 1
                _draw(ax, t, layout, stride, **STYLES[_kind(t)])
        handles = [
            Line2D([], [], label=f"{kind} ({n})", **_legend_style(STYLES[kind]))
            for kind, n in counts.items()
            if n
        ]
        if best is not None:
            _draw(ax, best, layout, stride, **BEST)
            mark = "best trial" if best.number == _best_number(study) else "best of these:"
            label = f"{mark} {best.number} ({metric} {best.value:.4g})"
            handles.insert(0, Line2D([], [], label=label, **BEST))
        if layout == PER_FOLD and stride:
            _fold_ticks(ax, group, stride)
        else:
            ax.xaxis.get_major_locator().set_params(integer=True)
        if ax.get_xlabel() == "":
            ax.set_xlabel(LAYOUTS[layout])
        ax.set_ylabel(f"validation {metric}")
        ax.set_title(f"{len(group)} trials that report on: {LAYOUTS[layout]}", fontsize=11)
        ax.legend(handles=handles, loc="best", fontsize=9, framealpha=0.85)
        ax.grid(alpha=0.3)
    fig.suptitle(f"Intermediate values ({study.study_name})")
    return fig


STYLES = {  # pruned trials in the background; 'x' marks where a trial was pruned
    "complete": {"color": "tab:blue", "lw": 1.3, "alpha": 0.7, "zorder": 2},
    "pruned": {"color": "tab:gray", "lw": 0.9, "alpha": 0.45, "zorder": 1, "end": "x"},
    "other": {"color": "tab:orange", "lw": 0.9, "alpha": 0.6, "zorder": 1, "ls": ":"},
}
BEST = {"color": "tab:red", "lw": 2.4, "alpha": 1.0, "zorder": 3}


def _kind(t: FrozenTrial) -> str:
    if t.state == TrialState.COMPLETE:
        return "complete"
    return "pruned" if t.state == TrialState.PRUNED else "other"


def _legend_style(style: dict) -> dict:
    out = {k: v for k, v in style.items() if k != "end"}
    if "end" in style:
        out["marker"] = style["end"]
    return out


def _draw(ax, t: FrozenTrial, layout: str, stride: int, end: str | None = None, **style):
    """The trial's curve, 1-based; a curve per fold (not joined across folds) for PER_FOLD."""
    steps = sorted(t.intermediate_values)
    pieces = [steps]
    if layout == PER_FOLD and stride:
        folds = {}
        for s in steps:
            folds.setdefault(s // stride, []).append(s)
        pieces = list(folds.values())
    for piece in pieces:
        ax.plot([s + 1 for s in piece], [t.intermediate_values[s] for s in piece], **style)
    if end and steps:
        last = steps[-1]
        mark = {**style, "marker": end, "ms": 5, "ls": ""}
        ax.plot([last + 1], [t.intermediate_values[last]], **mark)


def _fold_ticks(ax, group: list[FrozenTrial], stride: int) -> None:
    """Fold k spans steps k*stride+1 .. (k+1)*stride: a line between folds, the epochs within
    each fold as minor ticks and 'fold k' under them."""
    n = 1 + max(max(t.intermediate_values) // stride for t in group)
    step = next(s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500) if n * stride / s <= 24)
    # a label at the fold's last epoch would run into the next fold's "1" unless every one shows
    epochs = sorted({1, *range(step, stride + 1 - step // 2, step)})
    for k in range(1, n):
        ax.axvline(k * stride + 0.5, color="black", lw=0.6, alpha=0.4)
    ax.set_xticks([k * stride + e for k in range(n) for e in epochs], minor=True)
    ax.set_xticklabels([str(e) for _ in range(n) for e in epochs], minor=True, fontsize=7)
    ax.set_xticks([k * stride + (stride + 1) / 2 for k in range(n)])
    ax.set_xticklabels([f"fold {k + 1}" for k in range(n)])
    ax.tick_params(axis="x", which="major", length=0, pad=16)
    ax.xaxis.remove_overlapping_locs = False  # an epoch tick under a fold's name stays
    ax.set_xlim(0.5, n * stride + 0.5)
    ax.set_xlabel(f"epoch within each fold ({stride} epochs per fold at most)")


def _best_number(study: optuna.Study) -> int | None:
    try:
        return study.best_trial.number
    except ValueError:
        return None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def plot_parallel(study: optuna.Study, metric: str):
    """Optuna's parallel coordinate plot with labels that do not run into each other."""
    from optuna.visualization import matplotlib as ovm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        ax = ovm.plot_parallel_coordinate(study, target_name=metric)
    fig = ax.get_figure()
    params = {p for t in study.get_trials(deepcopy=False) for p in t.params}
    names = [_full(label.get_text(), params) for label in ax.get_xticklabels()]
    ax.set_xticks(ax.get_xticks(), [_cut(n) for n in short_names(names)])
    for label in ax.get_xticklabels():
        label.set(rotation=30, ha="right", rotation_mode="anchor")
    for twin in fig.axes:  # category names on each parameter's axis (not the log axes' 10^k)
        labels = [label.get_text() for label in twin.get_yticklabels()]
        if twin is not ax and any(len(t) > LABEL_CHARS and "$" not in t for t in labels):
            twin.set_yticks(twin.get_yticks(), [_cut(text) for text in labels])
        twin.tick_params(axis="y", which="both", labelsize=8)
    width = max(10.0, 1.5 * len(names) + 3)  # 16 characters fit in 1.5 in
    fig.set_size_inches(width, 6.5)
    return fig


def _full(label: str, params: set[str]) -> str:
    """The parameter behind one of Optuna's labels (it cuts long ones to 'sched.warmup_f...')."""
    if label.endswith("...") and label not in params:
        matches = [p for p in params if p.startswith(label[:-3])]
        if len(matches) == 1:
            return matches[0]
    return label


def short_names(names: list[str]) -> list[str]:
    """Config paths by their last part ('optim.lr' -> 'lr') where that part is unique."""
    last = [n.rsplit(".", 1)[-1] for n in names]
    return [s if last.count(s) == 1 else n for n, s in zip(names, last)]


def _cut(text: str) -> str:
    """Cut in the middle: choices like [a, b] and [a, b, c] differ at the end."""
    if len(text) <= LABEL_CHARS:
        return text
    head = (LABEL_CHARS - 1) // 2
    return text[:head] + "…" + text[head + 1 - LABEL_CHARS :]


def _optuna(fn: str):
    def plot(study: optuna.Study, metric: str):
        from optuna.visualization import matplotlib as ovm

        ax = getattr(ovm, fn)(study, target_name=metric)
        fig = (ax.flat[0] if hasattr(ax, "flat") else ax).get_figure()
        fig.set_size_inches(10, 6)
        return fig

    return plot


PLOTS = {
    "optimization_history.png": _optuna("plot_optimization_history"),
    "param_importances.png": _optuna("plot_param_importances"),
    "parallel_coordinate.png": plot_parallel,
    "intermediate_values.png": plot_intermediate,
}


def save_plots(study: optuna.Study, out_dir: Path, metric: str) -> dict[str, str]:
    """PNG plots of the study; {file: 'ok' or why it was skipped}."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = {}
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    for name, plot in PLOTS.items():
        if len(complete) < 2 and name != "optimization_history.png":
            done[name] = "skipped: fewer than 2 completed trials"
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fig = plot(study, metric)
                fig.tight_layout()
            atomic_write(out_dir / name, lambda tmp, f=fig: f.savefig(tmp, dpi=100, format="png"))
            plt.close(fig)
            done[name] = "ok"
        except Exception as exc:  # a plot must never cost the results of a whole study
            plt.close("all")
            done[name] = f"skipped: {exc}".splitlines()[0]
    return done
