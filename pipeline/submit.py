"""python -m pipeline.submit <competition> FILE -m MESSAGE [--dry-run] [--data-dir DIR]

Validates the file exactly as the run that wrote it did (pipeline.submission.format), then sends it
with the Kaggle client; --dry-run only validates. Without --data-dir, a file inside a run folder
is checked against the data folder that run read (its provenance.json).
"""

from __future__ import annotations

from pathlib import Path

from pipeline.cli import ArgumentParser, add_timeout, competition_of, run_cli
from pipeline.download import is_builtin
from pipeline.errors import UserError
from pipeline.interrupts import keeping
from pipeline.kaggle import client as kaggle_io
from pipeline.kaggle.client import SUBMIT_TIMEOUT
from pipeline.run.provenance import recorded_data_dir
from pipeline.submission.format import check_file


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="python -m pipeline.submit",
        description="Validate a submission file against the competition's files and send it "
        "to Kaggle (needs a token; --dry-run only validates).",
    )
    parser.add_argument("competition", help="competition name, e.g. covid, timit, demo")
    parser.add_argument("file", type=Path, help="the submission CSV, e.g. runs/.../submission.csv")
    parser.add_argument("-m", "--message", required=True, help="the submission's description")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="validate and print what would be sent; send nothing",
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        help="folder with the competition files, or Kaggle's zip of them (default: the one "
        "the run that wrote FILE read, from its provenance.json; else data/<kaggle-slug>/)",
    )
    add_timeout(parser, SUBMIT_TIMEOUT, "the upload")
    return parser


def main(argv: list[str] | None = None) -> int:
    @keeping("nothing was sent")
    def run() -> int:
        args = build_parser().parse_args(argv)
        competition, _ = competition_of(args)
        recorded = None if args.data_dir else recorded_data_dir(args.file, competition.files)
        if recorded is not None:
            print(f"checking against {recorded}/, the data folder of the run that wrote the file")
        data_dir = competition.resolve_data_dir(args.data_dir or recorded)
        frame = check_file(competition, args.file, data_dir)
        what = (
            f"{args.file} ({len(frame)} rows, columns {', '.join(map(str, frame.columns))}) "
            f"to {competition.slug} with message {args.message!r}"
        )
        if args.dry_run:
            print(f"dry run: {args.file} is a valid submission; would send {what}. Nothing sent.")
            return 0
        if is_builtin(competition, data_dir):
            raise UserError(
                f"{competition.name} is built in, not a Kaggle competition: nothing to send "
                f"({args.file} is valid; --dry-run checks a file without sending)."
            )
        page = f"https://www.kaggle.com/competitions/{competition.slug}/submissions"
        with keeping(f"the upload may have reached Kaggle; see {page} before sending again"):
            answer = kaggle_io.submit_file(competition.slug, args.file, args.message, args.timeout)
        print(f"Sent {what}.")
        print(f"Kaggle: {answer or 'no message'}")
        print(f"Scores: {page}")
        return 0

    return run_cli(run)


if __name__ == "__main__":
    raise SystemExit(main())
