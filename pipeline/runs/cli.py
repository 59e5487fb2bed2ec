"""python -m pipeline.runs <competition> [--runs-dir DIR] [--top N] [--sort score|date]

A leaderboard of a competition's finished runs: every train run, tune folder and blend in
runs/<competition>/ (or --runs-dir), best first, with the out-of-fold score, the nested blend
score, the date and the config keys that differ from the competition's defaults.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from pipeline.cli import ArgumentParser, run_cli
from pipeline.errors import UserError
from pipeline.progress import make_console
from pipeline.runs.board import Row, competition_defaults, read_runs


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m pipeline.runs",
        description="A leaderboard of a competition's runs: scores, date, what each changed.",
    )
    add = parser.add_argument
    add("competition", help="competition name or competition.yaml path, as for pipeline.train")
    add("--runs-dir", type=Path, help="folder of run folders (default: runs/<competition>/)")
    add("--top", type=int, default=0, help="show the best N runs only (default: all)")
    add(
        "--sort",
        choices=("score", "date"),
        default="score",
        help="score: best first (the better of CV and nested blend); date: newest first",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    def run() -> int:
        from pipeline.competition.catalog import load_competition

        args = build_parser().parse_args(argv)
        if args.top < 0:
            raise UserError(f"--top must be an int >= 0; got {args.top}.")
        competition = load_competition(args.competition)
        folder = args.runs_dir or Path("runs") / competition.name
        if not folder.is_dir():
            raise UserError(
                f"{folder} is not a folder of runs; train one with: python -m pipeline.train "
                f"{competition.command_name} (or pass --runs-dir)."
            )
        rows, skipped = read_runs(folder, competition.name, competition_defaults(competition))
        rows = ranked(rows, args.sort)
        shown = rows[: args.top] if args.top else rows
        print_board(shown, competition, folder, len(rows), skipped)
        return 0

    return run_cli(run)


def ranked(rows: list[Row], sort: str) -> list[Row]:
    if sort == "date":
        return sorted(rows, key=lambda r: r.date.timestamp() if r.date else 0.0, reverse=True)

    def key(r: Row):
        best = r.best
        if best is None:
            return (1, 0.0)
        return (0, -best if r.greater_is_better else best)

    return sorted(rows, key=key)


def print_board(rows: list[Row], competition, folder: Path, total: int, skipped: int) -> None:
    console = make_console()
    metric = competition.metric
    better = "higher" if metric.greater_is_better else "lower"
    if not rows:
        console.print(
            f"{folder}: no finished {competition.name} runs yet ({skipped} other folders)."
        )
        return
    table = Table(
        title=f"{competition.name}: {total} runs in {folder} ({metric.name}, {better} is better)",
        title_justify="left",
    )
    for name in ("rank", "run", "kind", "date", f"CV {metric.name}", "blend, nested", "seconds"):
        justify = "left" if name in ("run", "kind", "date") else "right"
        table.add_column(name, justify=justify, no_wrap=name in ("run", "date"))
    table.add_column("differs from the defaults (blend: its members)")
    for rank, r in enumerate(rows, 1):
        cells = [
            str(rank),
            r.run,
            r.kind,
            r.date.strftime("%Y-%m-%d %H:%M") if r.date else "",
            _score(r.cv),
            _score(r.blend),
            f"{r.seconds:.1f}" if isinstance(r.seconds, (int, float)) else "",
            " ".join(r.differs) or "(defaults)",
        ]
        table.add_row(*(Text(cell) for cell in cells))  # [a,b] is a value, not rich markup
    console.print(table)
    notes = ["CV: the network's out-of-fold score (after post-processing where the run has it)"]
    notes.append("blend, nested: each fold scored with weights fitted on the other folds")
    console.print("; ".join(notes), highlight=False)
    if skipped:
        console.print(
            f"{skipped} folder(s) skipped: unfinished runs, other competitions' or no runs",
            highlight=False,
        )


def _score(value) -> str:
    return f"{value:.4f}" if isinstance(value, (int, float)) else ""
