"""python -m pipeline.tune: Optuna search with K-fold CV and pruning, ending in a submission."""

from pipeline.tune.cli import main

__all__ = ["main"]
