"""What `bench tune` prints: one line per trial, and the summary with the command that re-runs the best."""

from __future__ import annotations

import shlex
from typing import Any

from bench.commands.tune.study import OBJECTIVES, best_trial, tuned_params
from bench.running.study_storage import shown

VALUE_FORMATS = {"balanced_accuracy": "{:.4f}", "train_time": "{:.2f} s", "peak_memory": "{:.0f} MB"}
RERUN_FLAGS = ("config", "dataset", "text_col", "label_col", "data_opt", "per_class", "split", "max_rows",
               "split_col", "test_from", "model", "results_dir", "storage")


def fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def fmt_params(params: dict) -> str:
    return " ".join(f"{k}={fmt(v)}" for k, v in params.items())


def fmt_values(objectives: list[str], values) -> str:
    return ", ".join(f"{o} {VALUE_FORMATS[o].format(float(v))}" for o, v in zip(objectives, values))


def trial_line(r, objectives: list[str], workers: int = 1):
    """The trial's progress line (`r` a TrialResult); with several workers, which one ran it."""
    what = fmt_values(objectives, r.values) if r.values else r.state
    note = f"  ({r.note})" if r.note else ""
    width = 26 * len(objectives)  # the values column lines up
    by = f"  [worker {r.worker}]" if workers > 1 else ""
    print(f"trial {r.number:>3}  {what:<{width}s} {r.seconds:6.1f} s  {fmt_params(r.space)}{note}{by}", flush=True)
    return r


def rerun_command(args, study_name: str) -> str:
    parts = ["bench", "run", "--strategies", args.strategy, "--params-from", study_name]
    for attr in RERUN_FLAGS:
        value = getattr(args, attr, None)
        for item in (value if isinstance(value, list) else [value] if value else []):  # --data-opt repeats
            parts += [f"--{attr.replace('_', '-')}", shown(str(item))]
    return shlex.join(parts + ["--seeds", "0,1,2"])


def print_summary(search, results: list, args) -> None:
    """`search` a trials.Search, `results` its TrialResults of this invocation."""
    from optuna.trial import TrialState

    counts = {s: sum(r.state == s for r in results) for s in ("COMPLETE", "PRUNED", "FAIL")}
    total = len(search.study.get_trials(deepcopy=False))
    print(f"\nstudy '{search.study.study_name}': {len(results)} trial(s) in this run ({counts['COMPLETE']} complete, "
          f"{counts['PRUNED']} pruned, {counts['FAIL']} failed); {total} in the study, in {shown(search.url)}")
    best = best_trial(search.study)
    if best is None:
        print("no complete trial yet: nothing to re-run")
        return
    if len(search.objectives) > 1:
        arrows = ", ".join(f"{o} ({OBJECTIVES[o][0]})" for o in search.objectives)
        front = sorted(search.study.best_trials, key=lambda t: -t.values[0])
        print(f"Pareto front of {arrows}: {len(front)} trial(s)")
        for t in front:
            print(f"  trial {t.number:>3}  {fmt_values(search.objectives, t.values)}  "
                  f"{fmt_params(tuned_params(t, search.strategy))}")
    n_complete = len(search.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    print(f"best of {n_complete} complete trial(s): trial {best.number}, validation "
          f"{fmt_values(search.objectives, best.values)}")
    print(f"  params: {fmt_params(tuned_params(best, search.strategy))}")
    print(f"re-run them on the test split:\n  {rerun_command(args, search.study.study_name)}")
    if args.storage and shown(args.storage) != args.storage:
        print("  (the storage URL's secret is shown as ***: put yours back)")
