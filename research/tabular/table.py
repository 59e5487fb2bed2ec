"""The before/after Markdown table of docs/tabular-models.md from research.tabular.bench's
scores.json files.

    python -m research.tabular.table runs/bench --before before --after after

Each row: a set, a code version, the held-out score of the network alone, of each reference
and of the blend, what submission.csv holds (and which candidate the run chose), the wall
time (with the machine's load beside it) and the run's CPU seconds. `--before` and `--after`
take several labels each (later ones fill in sets the earlier ones lack).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REFERENCES = ("ridge", "logistic_regression", "hist_gradient_boosting", "lightgbm")
SHORT = {
    "ridge": "linear",
    "logistic_regression": "linear",
    "hist_gradient_boosting": "HGB",
    "lightgbm": "LightGBM",
}


def load(root: Path, labels: list[str]) -> dict:
    out: dict = {}
    for label in labels:
        path = root / label / "scores.json"
        if path.is_file():
            for row in json.loads(path.read_text()):
                if "error" not in row:
                    out.setdefault(row["set"], row)
    return out


def cells(row: dict, cpu: dict | None) -> list[str]:
    held = row["held_out"]
    network = held.get("submission_network", held["submission"])
    refs = {}
    for key, value in held.items():
        name = key.removeprefix("reference ").removeprefix("submission_")
        if name in REFERENCES:
            refs[SHORT[name]] = value
    chosen = (row.get("recommended") or {}).get("model", "network")
    cpu_seconds = row.get("cpu_seconds") or (cpu or {}).get("cpu_seconds")
    return [
        f"{network:.4f}",
        *(f"{refs[n]:.4f}" if n in refs else "-" for n in ("linear", "HGB", "LightGBM")),
        f"{held['submission_blend']:.4f}" if "submission_blend" in held else "-",
        f"{held['submission']:.4f} ({chosen})",
        f"{row['seconds']:.0f} (load {row['load']:.1f})",
        f"{cpu_seconds:.0f}" if cpu_seconds else "-",
    ]


def oof_table(after: dict) -> None:
    """Out-of-fold scores of the after runs: the network against the best booster."""
    print("| set | metric | network | best booster | network vs booster | blend (nested) |")
    print("|---|---|---|---|---|---|")
    for name, row in after.items():
        oof = row["oof"]
        boosters = {k: v for k, v in oof.items() if k in ("hist_gradient_boosting", "lightgbm")}
        if not boosters:
            continue
        greater = row["metric"] in ("auc", "accuracy", "r2")
        best = (max if greater else min)(boosters, key=boosters.get)
        gap = (oof["network"] - boosters[best]) / abs(boosters[best]) * 100
        gap = gap if greater else -gap  # > 0: the network is better
        print(
            f"| {name} | {row['metric']} | {oof['network']:.4f} | {SHORT[best]} "
            f"{boosters[best]:.4f} | {gap:+.1f}% | {oof.get('blend (nested)', float('nan')):.4f} |"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--before", nargs="+", default=["before"])
    parser.add_argument("--after", nargs="+", default=["after"])
    parser.add_argument("--cpu", nargs="+", default=[], help="labels holding before CPU times")
    parser.add_argument("--oof", action="store_true", help="the after runs' CV scores instead")
    args = parser.parse_args(argv)
    if args.oof:
        oof_table(load(args.root, args.after))
        return 0
    before, after = load(args.root, args.before), load(args.root, args.after)
    cpu = load(args.root, args.cpu)
    head = [
        "set",
        "metric",
        "code",
        "network",
        "linear",
        "HGB",
        "LightGBM",
        "blend",
        "submission.csv",
        "wall s",
        "CPU s",
    ]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for name in [*before, *(n for n in after if n not in before)]:
        for code, rows in (("before", before), ("after", after)):
            if name in rows:
                row = rows[name]
                print(
                    f"| {name} | {row['metric']} | {code} | "
                    + " | ".join(cells(row, cpu.get(name) if code == "before" else None))
                    + " |"
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
