"""What a person sees of a blend: a one-screen summary (the nested score first) and blend.png
(the weights, and every member's out-of-fold score beside the blend's)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from pipeline.ensemble.checks import cv_text
from pipeline.io import atomic_write
from pipeline.progress import make_console


def print_blend_summary(metrics: dict, out_dir: Path, console: Console | None = None) -> None:
    console = console or make_console()
    name = metrics["metric"]
    better = "higher" if metrics["greater_is_better"] else "lower"
    table = Table(
        title=f"{metrics['competition']}: blend of {len(metrics['members'])} members, "
        f"{cv_text(metrics['cv'])} ({name}, {better} is better)",
        title_justify="left",
    )
    for column in ("member", "weight", f"out-of-fold {name}", "folds mean ± std"):
        table.add_column(column, justify="left" if column == "member" else "right")
    for m in metrics["members"]:
        table.add_row(
            m["name"],
            f"{m['weight']:.2f}",
            f"{m['oof_score']:.4f}",
            f"{m['mean']:.4f} ± {m['std']:.4f}",
        )
    table.add_row(
        f"blend ({metrics['method']}), nested",
        "",
        f"{metrics['oof_score']:.4f}",
        f"{metrics['mean']:.4f} ± {metrics['std']:.4f}",
        end_section=True,
    )
    console.print(table)
    best, gain = metrics["best_member"], metrics["gain_over_best_member"]
    verdict = "beats" if gain > 0 else "does not beat"
    console.print(
        f"nested out-of-fold {name} {metrics['oof_score']:.4f} (each fold blended with weights "
        f"fitted on the other folds; {metrics['in_sample_oof_score']:.4f} in sample): the blend "
        f"{verdict} the best member, {best['name']} {best['oof_score']:.4f}, by {abs(gain):.4f}"
    )
    console.print(f"equal weights: out-of-fold {name} {metrics['equal_weights_oof_score']:.4f}")
    console.print(f"files: {out_dir}/ submission.csv oof.csv metrics.json blend.png")


def plot_blend(path: Path, metrics: dict) -> Path:
    """Left: each member's weight; right: out-of-fold scores, the blend's nested and in sample."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    members = metrics["members"]
    names = [m["name"] for m in members]
    height = 1.5 + 0.35 * (len(names) + 3)
    fig, (ax_w, ax_s) = plt.subplots(1, 2, figsize=(11, height))
    ax_w.barh(names, [m["weight"] for m in members], color="C0")
    ax_w.set(xlabel="weight", xlim=(0, 1), title=f"weights ({metrics['method']})")
    ax_w.invert_yaxis()
    labels = [*names, "equal weights", "blend, in sample", "blend, nested"]
    scores = [m["oof_score"] for m in members]
    scores += [
        metrics["equal_weights_oof_score"],
        metrics["in_sample_oof_score"],
        metrics["oof_score"],
    ]
    colors = ["C7"] * len(members) + ["C2", "C1", "C3"]
    ax_s.barh(labels, scores, color=colors)
    low, high = min(scores), max(scores)
    pad = (high - low) * 0.5 or abs(high) * 0.01 or 0.01
    ax_s.set(
        xlim=(low - pad, high + pad),
        xlabel=f"out-of-fold {metrics['metric']}",
        title="out-of-fold scores",
    )
    ax_s.invert_yaxis()
    for y, score in enumerate(scores):
        ax_s.text(score, y, f" {score:.4f}", va="center", fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return path
