"""python -m pipeline.tune: Optuna search with K-fold CV and pruning, ending in a submission.

Reading order, top down (a module imports only modules below it):
- cli.py        the command line: flags, their checks, main() and tune(), which wires the rest
- study.py      one worker's part of a study: open or resume it, run trials, who writes the end
- final.py      the end of a study: best.yaml, the final fit, the top-k ensemble, tune.json
- objective.py  one trial = one K-fold run of the training flow (TuneSetup, Objective)
- hooks.py      the CrossValidator hooks of a trial: report epochs and folds, stop when pruned
- pruners.py    how steps are numbered, the --pruner registry (median, wilcoxon, hyperband,
                none) and what each pruner sees with either engine
- space.py      the search space: config paths -> Optuna distributions
- storage.py    where a study lives, how workers share it, crashed trials retried, exact totals
- journal.py    --storage journal:PATH, each line checked before a study uses the file
- report.py     what a person sees: progress while tuning, the summary table
- plots.py      the study's plots as PNG (intermediate values one panel per step layout)
"""

from pipeline.tune.cli import main

__all__ = ["main"]
