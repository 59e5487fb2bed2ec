"""python -m pipeline.runs: a leaderboard of a competition's runs.

- cli.py    the command line: which folder, how many rows, the sort order; the table
- board.py  one row per finished run: scores, date, kind, the config keys that differ
"""

from pipeline.runs.cli import main

__all__ = ["main"]
