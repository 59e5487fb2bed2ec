"""What each TIMIT ingredient is worth: one command that trains a list of recipes on one data
folder and prints a table of out-of-fold and (where the folder holds answers.csv, as the
speech stand-in does) unseen-speaker test accuracy, each raw, smoothed and Viterbi-decoded.

    python -m research.timit.ingredients data/timit-speech cv.folds=3 train.epochs=12
    python -m research.timit.ingredients data/timit-small --recipes mlp,seq --grid

Each recipe is one `python -m pipeline.train timit` run (saved under --out/<recipe>/, its
config.yaml says how to repeat it); the trailing key=value overrides apply to every recipe.
The post-processing is recomputed from the saved probabilities (oof_proba.npy,
test_proba.npy): out-of-fold with each fold's own training labels, test with all of them, as
the pipeline does. --grid also searches the Viterbi weights on the out-of-fold predictions.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import PostConfig
from pipeline.engine.splits import blocked_splits
from pipeline.run.postprocess import postprocess, postprocess_oof

# the sequence recipes' model and training keys; they differ in the frames each row holds
SEQUENCE = [
    "model.name=seq",
    "model.window=64",
    "model.stride=32",
    "model.channels=128",
    "model.layers=2",
    "model.hidden=[256]",
    "model.norm=batch",
    "model.dropout=0.25",
    "model.frame_dropout=0.2",
    "train.grad_clip=1.0",
]
# name -> (what it is, overrides on top of the TIMIT defaults): each recipe sets every key it
# depends on, so it stays the same recipe when the defaults change. "seq1" is the default.
RECIPES: dict[str, tuple[str, list[str]]] = {
    "mlp": (
        "frame MLP 1024-1024-512-256, batch norm, dropout 0.25 (11 frames)",
        [
            "model.name=mlp",
            "model.hidden=[1024,1024,512,256]",
            "model.norm=batch",
            "model.dropout=0.25",
            "train.grad_clip=0.0",
            "features.context=11",
        ],
    ),
    "conv": (
        "conv over the 11 frames, 128 channels, head [512]",
        [
            "model.name=conv",
            "model.channels=128",
            "model.hidden=[512]",
            "model.norm=batch",
            "model.dropout=0.25",
            "model.layers=2",
            "model.frame_dropout=0.0",
            "train.grad_clip=0.0",
            "features.context=11",
        ],
    ),
    "gru": (
        "bidirectional GRU over the 11 frames, 128 units, head [256]",
        [
            "model.name=gru",
            "model.channels=128",
            "model.hidden=[256]",
            "model.norm=batch",
            "model.dropout=0.25",
            "model.layers=2",
            "model.frame_dropout=0.0",
            "train.grad_clip=1.0",
            "features.context=11",
        ],
    ),
    "seq": (
        "sequence BiGRU over 64-row windows (stride 32), 2 x 128 units, 11-frame rows",
        [*SEQUENCE, "features.context=11"],
    ),
    "seq1": (
        "the same sequence BiGRU reading only each row's centre frame (39 columns)",
        [*SEQUENCE, "features.context=1"],
    ),
}
GRID_PRIOR = (0.0, 0.25, 0.5, 0.75, 1.0)
GRID_TRANSITION = (0.5, 1.0, 2.0, 3.0, 5.0)


def scores(oof, y, splits, test, answers, post: PostConfig) -> tuple[float, float | None]:
    """(out-of-fold accuracy, test accuracy or None) after `post`."""
    if post.enabled:
        oof_labels = postprocess_oof(oof, y, splits, post)
        test_labels = postprocess(test, y, post) if answers is not None else None
    else:
        oof_labels, test_labels = oof.argmax(1), test.argmax(1)
    oof_score = float(np.mean(oof_labels == y))
    test_score = None if answers is None else float(np.mean(test_labels == answers))
    return oof_score, test_score


def evaluate(run: Path, y: np.ndarray, answers: np.ndarray | None, grid: bool) -> dict:
    metrics = json.loads((run / "metrics.json").read_text())
    oof = np.load(run / "oof_proba.npy")
    test = np.load(run / "test_proba.npy")
    cv = metrics["cv"]
    splits = blocked_splits(len(y), cv["folds"], cv["gap"])
    ran = metrics["post"]
    viterbi = PostConfig(
        viterbi=True,
        transition_weight=ran.get("transition_weight", 2.0),
        prior_weight=ran.get("prior_weight", 0.5),
    )
    out = {"seconds": metrics["seconds"], "epochs": metrics["epochs_run"]}
    posts = (("raw", PostConfig()), ("smooth5", PostConfig(smooth=5)), ("viterbi", viterbi))
    for name, post in posts:
        out[name] = scores(oof, y, splits, test, answers, post)
    if grid:
        table = {}
        for p in GRID_PRIOR:
            for t in GRID_TRANSITION:
                post = PostConfig(viterbi=True, transition_weight=t, prior_weight=p)
                table[(p, t)] = scores(oof, y, splits, test, answers, post)
        best = max(table, key=lambda key: table[key][0])
        out["grid"] = {"best": best, "scores": table[best], "all": table}
    return out


def _fmt(pair) -> str:
    oof, test = pair
    return f"{oof:.3f}" if test is None else f"{oof:.3f} / {test:.3f}"


def main(argv: list[str] | None = None) -> int:
    from competitions.timit import competition
    from pipeline.train import main as train

    parser = argparse.ArgumentParser(
        prog="python -m research.timit.ingredients", description=__doc__.split("\n")[0]
    )
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("overrides", nargs="*", help="key=value for every recipe")
    parser.add_argument("--recipes", default=",".join(RECIPES), help="comma-separated names")
    parser.add_argument("--out", type=Path, default=Path("runs/ingredients"))
    parser.add_argument("--grid", action="store_true", help="search the Viterbi weights too")
    parser.add_argument("--reuse", action="store_true", help="score runs already in --out")
    args = parser.parse_intermixed_args(argv)
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        parser.error(f"unknown recipes {unknown}; choose from {', '.join(RECIPES)}")
    y = competition.load_train(args.data_dir).y
    answers_csv = args.data_dir / "answers.csv"
    answers = pd.read_csv(answers_csv)["Class"].to_numpy() if answers_csv.is_file() else None
    rows = []
    for name in names:
        run = args.out / name
        if not (args.reuse and (run / "metrics.json").is_file()):
            command = [
                "timit",
                "--data-dir",
                str(args.data_dir),
                "--out",
                str(run),
                "--overwrite",
                "--quiet",
                *RECIPES[name][1],
                *args.overrides,
            ]
            code = train(command)
            if code:
                return code
        result = evaluate(run, y, answers, args.grid)
        rows.append((name, result))
        seconds = result["seconds"]["total"]
        line = (
            f"{name}: raw {_fmt(result['raw'])}, smooth5 {_fmt(result['smooth5'])}, "
            f"viterbi {_fmt(result['viterbi'])} ({seconds:.0f} s)"
        )
        print(line, flush=True)
    where = "OOF / unseen-speaker test" if answers is not None else "OOF"
    print(f"\n| recipe | raw | `post.smooth=5` | Viterbi | seconds | ({where} accuracy)")
    print("|---|---|---|---|---|")
    for name, r in rows:
        print(
            f"| {RECIPES[name][0]} | {_fmt(r['raw'])} | {_fmt(r['smooth5'])} | "
            f"{_fmt(r['viterbi'])} | {r['seconds']['total']:.0f} |"
        )
    if args.grid:
        print("\nViterbi weights searched on OOF (prior_weight, transition_weight):")
        for name, r in rows:
            g = r["grid"]
            print(f"  {name}: best {g['best']} -> {_fmt(g['scores'])}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
