"""What a person sees while tuning and at the end: a progress bar in a terminal, lines in a pipe,
a log or a notebook (at most one every few seconds: pipeline.progress.pulse_gap, each saying
how many trials finished, the best so far and the latest trial; a trial that failed or
diverged at once), and a summary table of the best trials (the plots: pipeline/tune/plots.py)."""

from __future__ import annotations

import math
from collections import Counter

import optuna
from optuna.trial import FrozenTrial, TrialState
from rich.console import Console
from rich.table import Table

from pipeline.progress import LogPulse, bar, is_live, make_console


class TuneProgress:
    """A bar over the study's finished trials (all workers) with the best value and an ETA, on
    stderr; paced lines when stderr is no terminal; nothing when disabled."""

    def __init__(self, total: int | None, metric: str, enabled: bool = True):
        self.total, self.metric = total, metric
        self.console = make_console(stderr=True)
        self.enabled = enabled
        self.live = enabled and is_live(self.console)
        self.progress = bar(self.console, self.live)
        self.task = None
        self.best = ""
        self.pulse = LogPulse() if enabled and not self.live else None
        self.unsaid: str | None = None  # the latest trial's line, not printed yet

    def start(self, finished: int) -> TuneProgress:
        self.progress.start()
        self.task = self.progress.add_task("tuning", total=self.total, completed=finished)
        return self

    def stop(self) -> None:
        self.progress.stop()
        if self.pulse is not None and self.unsaid is not None:
            self._say()

    def epoch(self, number: int, fold: int | None, epoch: int) -> None:
        where = f"fold {fold + 1} " if fold is not None else ""
        if self.pulse is not None and self.pulse.due():
            self.pulse.say(f"trial {number} {where}epoch {epoch + 1}{self.best}")
        if self.live:
            self.progress.update(
                self.task, description=f"trial {number} · {where}epoch {epoch + 1}{self.best}"
            )

    def waiting(self, running: int) -> None:
        if self.live:
            self.progress.update(
                self.task, description=f"waiting for {running} running trial(s){self.best}"
            )

    def trial_done(self, trial: FrozenTrial, study: optuna.Study, finished: int) -> None:
        best = _best_trial(study)
        if best is not None:
            self.best = f" · best {self.metric} {best.value:.4f} (trial {best.number})"
        line = f"trial {trial.number} {trial_line(trial, self.metric)}"
        if self.live:
            self.progress.update(self.task, completed=finished, description=f"tuning{self.best}")
            self.progress.console.print(line, highlight=False)
        elif self.pulse is not None:
            count = f"{finished}/{self.total}" if self.total else f"{finished}"
            self.unsaid = f"{count} trials finished{self.best} · last: {line}"
            if is_trouble(trial) or self.pulse.due():
                self._say()

    def _say(self) -> None:
        self.pulse.say(self.unsaid)
        self.unsaid = None


def is_trouble(trial: FrozenTrial) -> bool:
    """A trial that failed, or ended for a reason of its own (diverged, out of memory, an
    impossible config) rather than the pruner's: said at once, even in paced lines."""
    if trial.state == TrialState.FAIL:
        return True
    reason = trial.user_attrs.get("reason", "")
    return trial.state == TrialState.PRUNED and not reason.startswith("pruned")


def trial_line(trial: FrozenTrial, metric: str) -> str:
    seconds = trial.user_attrs.get("seconds")
    took = f" · {seconds:.1f} s" if isinstance(seconds, (int, float)) else ""
    if trial.state == TrialState.COMPLETE:
        return f"complete: {metric} {trial.value:.4f}{took}"
    reason = trial.user_attrs.get("reason", "")
    if trial.state == TrialState.PRUNED:
        return f"pruned: {reason.removeprefix('pruned ')}{took}"
    return f"{trial.state.name.lower()}: {reason or 'its worker stopped'}{took}"


def _best_trial(study: optuna.Study) -> FrozenTrial | None:
    try:
        return study.best_trial
    except ValueError:
        return None


# --- the end of a study --------------------------------------------------------------------------


def reason_counts(study: optuna.Study) -> Counter:
    """What ended the trials that did not complete, by kind (the text before the first ':')."""
    kinds = Counter()
    for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED, TrialState.FAIL)):
        reason = t.user_attrs.get("reason") or "worker stopped (retried)"
        kind = reason.split(":")[0]
        if kind == "surplus":
            continue
        kinds["pruned" if kind.startswith("pruned") else kind] += 1
    return kinds


def print_tune_summary(summary: dict, console: Console | None = None) -> None:
    console = console or make_console()
    metric, c = summary["metric"], summary["counts"]
    rate = summary.get("trials_per_10_min")
    rate_text = f" · {rate:.1f} trials per 10 min" if rate else ""
    console.print(
        f"{summary['competition']}: study {summary['study']!r} ({summary['storage']}): "
        f"{c['finished']} trials finished ({c['complete']} complete, {c['pruned']} pruned), "
        f"{c['fail']} failed{rate_text}",
        highlight=False,
    )
    if summary.get("reasons"):
        parts = [f"{n} {k}" for k, n in summary["reasons"].most_common()]
        console.print("not completed: " + ", ".join(parts), highlight=False)
    top = summary["top"]
    if top:
        better = "higher" if summary["greater_is_better"] else "lower"
        table = Table(title=f"best trials ({metric}, {better} is better)", title_justify="left")
        for col in ("rank", "trial", metric, "seconds"):
            table.add_column(col, justify="right")
        table.add_column("parameters")
        for rank, t in enumerate(top, 1):
            params = "  ".join(f"{k.split('.')[-1]}={_short(v)}" for k, v in t["params"].items())
            table.add_row(
                str(rank), str(t["number"]), f"{t['value']:.4f}", _secs(t["seconds"]), params
            )
        console.print(table)
    best = summary["best"]
    params = "  ".join(f"{k}={_short(v)}" for k, v in best["params"].items())
    console.print(f"best trial {best['number']}: {metric} {best['value']:.4f}   {params}")
    final = summary.get("final")
    if final and summary.get("reference"):
        console.print(
            f"final {final['folds']}-fold run with the best {summary['reference']} settings: "
            f"{summary['reference']} out-of-fold {metric} {final['reference_oof_score']:.4f} "
            f"(best trial {best['value']:.4f}), network {final['oof_score']:.4f}; "
            f"submission.csv holds the {final['submission']}"
        )
    elif final:
        console.print(
            f"final {final['folds']}-fold fit with the best config: out-of-fold {metric} "
            f"{final['oof_score']:.4f} (best trial {best['value']:.4f}) -> submission.csv"
        )
    ens = summary.get("ensemble")
    if ens:
        console.print(
            f"top-{ens['k']} ensemble (trials {', '.join(map(str, ens['trials']))}): "
            f"out-of-fold {metric} {ens['oof_score']:.4f} vs best single trial "
            f"{ens['best_single']:.4f} -> ensemble/submission.csv"
        )
    elif summary.get("ensemble_note"):
        console.print(f"top-k ensemble: {summary['ensemble_note']}")
    out = summary["out_dir"]
    plots = [n for n, s in summary.get("plots", {}).items() if s == "ok"]
    console.print(f"files: {out}/ best.yaml submission.csv tune.json {' '.join(plots)}")
    console.print(
        f"replay: python -m pipeline.train {summary.get('command_name', summary['competition'])} "
        f"--config {out}/best.yaml"
    )
    if summary["storage"].startswith(("sqlite", "postgresql", "mysql")):
        console.print(
            f"dashboard: pip install optuna-dashboard && optuna-dashboard {summary['storage']}",
            highlight=False,
            soft_wrap=True,
        )


def _secs(value) -> str:
    return f"{value:.1f}" if isinstance(value, (int, float)) and math.isfinite(value) else ""


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def trials_per_10_min(study: optuna.Study) -> float | None:
    """Finished trials per 10 minutes of time when at least one trial was running (pauses
    between sessions do not count; trials running side by side count once)."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
    spans = sorted(
        (t.datetime_start, t.datetime_complete)
        for t in trials
        if t.datetime_start and t.datetime_complete
    )
    busy, end = 0.0, None
    for lo, hi in spans:
        if end is None or lo > end:
            busy += (hi - lo).total_seconds()
            end = hi
        elif hi > end:
            busy += (hi - end).total_seconds()
            end = hi
    return 600.0 * len(spans) / busy if busy > 0 else None
