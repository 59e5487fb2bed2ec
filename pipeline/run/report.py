"""What a person sees at the end of a run: a one-screen summary and learning-curve plots."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table


def print_summary(metrics: dict, out_dir: Path, console: Console | None = None) -> None:
    console = console or Console()
    name = metrics["metric"]
    better = "higher" if metrics["greater_is_better"] else "lower"
    cv = metrics["cv"]
    gap = f", gap {cv['gap']}" if cv["strategy"] == "blocked" else ""
    table = Table(
        title=f"{metrics['competition']}: {cv['folds']}-fold {cv['strategy']} CV{gap} "
        f"({name}, {better} is better)",
        title_justify="left",
    )
    table.add_column("fold", justify="right")
    table.add_column(name, justify="right")
    post = metrics.get("post")
    if post:
        table.add_column(f"{name} + post", justify="right")
    baseline = metrics.get("baseline")
    refs = metrics.get("references") or ([baseline] if baseline else [])
    for ref in refs:
        table.add_column(ref["name"], justify="right")
    table.add_column("best epoch", justify="right")
    table.add_column("seconds", justify="right")
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
    mean = f"{metrics['mean']:.4f} ± {metrics['std']:.4f}"
    row = ["mean", mean]
    if post:
        row.append(f"{post['mean']:.4f} ± {post['std']:.4f}")
    row += [f"{ref['mean']:.4f} ± {ref['std']:.4f}" for ref in refs]
    table.add_row(*row, "", f"{sum(metrics['seconds']['folds']):.1f}", end_section=True)
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


def plot_learning_curves(out_dir: Path, monitor: str) -> Path | None:
    """learning_curves.png from Lightning's CSV logs: losses and the validation metric per fold."""
    logs = sorted((out_dir / "logs").glob("fold[0-9]*/metrics.csv"))
    stacked = out_dir / "logs" / "folds" / "metrics.csv"  # the fast engine: one log, all folds
    if not logs and not stacked.is_file():
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    if stacked.is_file():
        frame = pd.read_csv(stacked).groupby("epoch").last()
        for key, style in (("train/loss", "--"), ("val/loss", "-")):
            if key in frame:
                line = frame[key].dropna()
                ax_loss.plot(line.index + 1, line, style, color="k", label=f"mean {key}")
        for k, column in enumerate(c for c in frame.columns if c.startswith(f"{monitor}/fold")):
            line = frame[column].dropna()
            ax_metric.plot(line.index + 1, line, color=f"C{k}", label=column.split("/")[-1])
    for k, path in enumerate(logs):
        fold, color = path.parent.name, f"C{k}"
        frame = pd.read_csv(path).groupby("epoch").last()
        for key, style in (("train/loss", "--"), ("val/loss", "-")):
            if key in frame:
                line = frame[key].dropna()
                ax_loss.plot(line.index + 1, line, style, color=color, label=f"{fold} {key}")
        if monitor in frame:
            line = frame[monitor].dropna()
            ax_metric.plot(line.index + 1, line, color=color, label=fold)
    ax_loss.set(
        xlabel="epoch",
        ylabel="loss (model scale)",
        yscale="log",
        title="training (dashed) and validation loss",
    )
    ax_metric.set(xlabel="epoch", ylabel=monitor, title=f"validation {monitor.split('/')[-1]}")
    ax_loss.legend(fontsize=6, ncol=2)
    ax_metric.legend(fontsize=7)
    fig.tight_layout()
    from pipeline.io import atomic_write

    path = out_dir / "learning_curves.png"
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path
