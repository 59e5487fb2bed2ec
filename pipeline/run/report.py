"""What a person sees at the end of a run: a one-screen summary and learning-curve plots.

The summary goes to a console made for where it runs (pipeline.progress.make_console): a pipe or
a log is wide enough for every column, and column names wrap at spaces in a narrow terminal
rather than being cut."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from pipeline.progress import make_console


def print_summary(metrics: dict, out_dir: Path, console: Console | None = None) -> None:
    console = console or make_console()
    name = metrics["metric"]
    baseline = metrics.get("baseline")
    refs = metrics.get("references") or ([baseline] if baseline else [])
    post = metrics.get("post")
    table = fold_table(metrics, refs, compact=False)
    wide = console.options.update_width(10_000)
    if console.measure(table, options=wide).maximum > console.width:  # a narrow terminal
        table = fold_table(metrics, refs, compact=True)
    console.print(table)
    console.print(f"out-of-fold {name}: {metrics['oof_score']:.4f}", end="")
    if baseline:
        gain = baseline["mean"] - metrics["mean"]
        if metrics["greater_is_better"]:
            gain = -gain
        verdict = "beats" if gain > 0 else "does not beat"
        console.print(f"   network {verdict} {baseline['name']} by {abs(gain):.4f}", end="")
    console.print(f"   total {metrics['seconds']['total']:.1f} s")
    if len(refs) > 1:
        shown = ", ".join(f"{r['name']} {r['oof_score']:.4f}" for r in refs)
        console.print(f"references, out-of-fold {name}: {shown}")
    blended = metrics.get("blend")
    if blended and "weights" in blended:
        weights = ", ".join(f"{k} {w:.2f}" for k, w in blended["weights"].items())
        console.print(
            f"blend ({weights}): out-of-fold {name} {blended['nested_oof_score']:.4f} with "
            f"weights fitted on the other folds ({blended['in_sample_oof_score']:.4f} in "
            "sample) -> submission_blend.csv"
        )
    chosen = metrics.get("recommended")
    if chosen:
        console.print(f"upload submission.csv = {chosen['file']}: {chosen['why']}")
    if metrics.get("engine"):
        together = " (all folds trained together)" if metrics["engine"] == "fast" else ""
        console.print(f"engine: {metrics['engine']}{together}", end="")
        note = metrics.get("engine_note")
        console.print(f"; plain because {note}" if note else "")
    monitor = metrics.get("monitor")
    if monitor and monitor != name:
        console.print(f"early stopping and best epochs: on validation {monitor} (train.monitor)")
    if post:
        steps = [f"smoothing over {post['smooth']} rows"] if post["smooth"] > 1 else []
        steps += ["Viterbi decoding"] if post["viterbi"] else []
        console.print(
            f"post-processing ({' + '.join(steps)}): out-of-fold {name} {post['oof_score']:.4f} "
            f"(raw {metrics['oof_score']:.4f}); the submission uses it"
        )
    console.print(f"files: {out_dir}/ submission.csv oof.csv metrics.json config.yaml", end="")
    if (out_dir / "learning_curves.png").exists():
        console.print(" learning_curves.png", end="")
    console.print()


def fold_table(metrics: dict, refs: list[dict], compact: bool) -> Table:
    """Per-fold scores of the network (and post-processing) and the references, best epochs
    and seconds, then the mean ± std. `compact`: one word a line in the headers, so that a
    score ± std is never cut or wrapped in an 80-column terminal."""
    name = metrics["metric"]
    better = "higher" if metrics["greater_is_better"] else "lower"
    cv = metrics["cv"]
    gap = f", gap {cv['gap']}" if cv["strategy"] == "blocked" else ""
    table = Table(
        title=f"{metrics['competition']}: {cv['folds']}-fold {cv['strategy']} CV{gap} "
        f"({name}, {better} is better)",
        title_justify="left",
    )

    def column(header: str) -> None:
        words = header.replace("_", " ")
        table.add_column(words.replace(" ", "\n") if compact else words, justify="right")

    post = metrics.get("post")
    for header in ["fold", name, *([f"{name} + post"] if post else [])]:
        column(header)
    for ref in refs:
        column(ref["name"])
    column("best epoch")
    column("seconds")
    for k, score in enumerate(metrics["fold_scores"]):
        row = [str(k + 1), f"{score:.4f}"]
        if post:
            row.append(f"{post['fold_scores'][k]:.4f}")
        row += [f"{ref['fold_scores'][k]:.4f}" for ref in refs]
        row += [
            f"{metrics['best_epochs'][k]}/{metrics['epochs_run'][k]}",
            f"{metrics['seconds']['folds'][k]:.1f}",
        ]
        table.add_row(*row)
    row = ["mean", f"{metrics['mean']:.4f} ± {metrics['std']:.4f}"]
    if post:
        row.append(f"{post['mean']:.4f} ± {post['std']:.4f}")
    row += [f"{ref['mean']:.4f} ± {ref['std']:.4f}" for ref in refs]
    table.add_row(*row, "", f"{sum(metrics['seconds']['folds']):.1f}", end_section=True)
    return table


def plot_learning_curves(out_dir: Path, monitor: str) -> Path | None:
    """learning_curves.png from Lightning's CSV logs (None: the run kept no logs)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = learning_curves(out_dir, monitor)
    if fig is None:
        return None
    from pipeline.io import atomic_write

    path = out_dir / "learning_curves.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path


def learning_curves(out_dir: Path, monitor: str):
    """The figure: losses and the validation metric per fold (folds numbered from 1, as in the
    summary), each fold's curve ending where the fold stopped and its best epoch marked
    (metrics.json's best_epochs and epochs_run, when written)."""
    logs = sorted((out_dir / "logs").glob("fold[0-9]*/metrics.csv"))
    stacked = out_dir / "logs" / "folds" / "metrics.csv"  # the fast engine: one log, all folds
    if not logs and not stacked.is_file():
        return None
    import matplotlib.pyplot as plt

    best, ran = _fold_epochs(out_dir)
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    if stacked.is_file():
        frame = pd.read_csv(stacked).groupby("epoch").last()
        last = max(ran.values(), default=None)  # the stack trains until its last fold stops
        for key, style in (("train/loss", "--"), ("val/loss", "-")):
            if key in frame:
                line = _until(frame[key].dropna(), last)
                ax_loss.plot(line.index + 1, line, style, color="k", label=f"mean {key}")
        folds = [c for c in frame.columns if c.startswith(f"{monitor}/fold")]
        for column in folds:
            k = int(column.rsplit("fold", 1)[1])
            line = _until(frame[column].dropna(), ran.get(k))
            _curve(ax_metric, line, f"C{k}", f"fold {k + 1}", best.get(k))
    for path in logs:
        k = int(path.parent.name.removeprefix("fold"))
        fold, color = f"fold {k + 1}", f"C{k}"
        frame = pd.read_csv(path).groupby("epoch").last()
        for key, style in (("train/loss", "--"), ("val/loss", "-")):
            if key in frame:
                line = frame[key].dropna()
                ax_loss.plot(line.index + 1, line, style, color=color, label=f"{fold} {key}")
        if monitor in frame:
            _curve(ax_metric, frame[monitor].dropna(), color, fold, best.get(k))
    ax_loss.set(
        xlabel="epoch",
        ylabel="loss (model scale)",
        yscale="log",
        title="training (dashed) and validation loss",
    )
    name = monitor.split("/")[-1]
    ax_metric.set(xlabel="epoch", ylabel=monitor, title=f"validation {name} (o: best epoch)")
    for ax, size in ((ax_loss, 6), (ax_metric, 7)):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=size, ncol=2 if ax is ax_loss else 1)
    fig.tight_layout()
    return fig


def _fold_epochs(out_dir: Path) -> tuple[dict[int, int], dict[int, int]]:
    """Each fold's best epoch and epochs run (1-based, as metrics.json keeps them)."""
    try:
        metrics = json.loads((out_dir / "metrics.json").read_text())
        best, ran = metrics["best_epochs"], metrics["epochs_run"]
    except (OSError, ValueError, KeyError):
        return {}, {}
    return dict(enumerate(best)), dict(enumerate(ran))


def _until(line: pd.Series, epochs: int | None) -> pd.Series:
    """The first `epochs` epochs of a curve indexed by 0-based epoch."""
    return line if epochs is None else line[line.index < epochs]


def _curve(ax, line: pd.Series, color: str, label: str, best: int | None) -> None:
    ax.plot(line.index + 1, line, color=color, label=label)
    if best is not None and best - 1 in line.index:
        ax.plot([best], [line[best - 1]], "o", color=color, markersize=5)
