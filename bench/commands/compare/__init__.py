"""`bench compare`: each strategy at its best at one tuning budget, then the test, in one command.

Per strategy, one Optuna study on the validation split, run by `bench tune`'s own trial loop
(bench/commands/tune/): the same sampler seed for every study, the strategy's own search space,
pruning as `bench tune`, trial 0 at the strategy's defaults, SQLite under the results folder or any
`--storage` URL, `--workers N` trial loops and `--launcher ray` as `bench tune` has them. Each study
runs until its budget is used (`--budget trials:N` or `time:DURATION`, bench/core/budget.py). Then,
through the ordinary run matrix (skips, claims and resumes as `bench run`), every strategy's best
parameters and its defaults run on the test split of every `--seeds` value.

Every record it writes says so (`Record.comparison`: the comparison, its budget, role trial or
test, variant tuned or default), and the report opens with the answer: the strategies tied with the
best tuned one and the cheapest of them by `--prefer`.

The tuning never sees a test row: a trial's pool has the test rows of every compared seed taken out
before its split is drawn, and a trial is given no test split at all.

Modules: protocol (the comparison's name, its records' protocol block, the held-out pool), budget
(a study's budget as the trial loops take it), studies (one strategy's study to its budget),
evaluation (the test runs), output (what it prints), loop (the entry point)."""

from __future__ import annotations

import argparse

from bench.commands.flags import (add_config_flag, add_data_flags, add_matrix_flags, add_report_flags,
                                  add_study_flags)
from bench.commands.launching import add_launcher_flags

HELP = """each strategy at its best: one tuning budget per strategy, then its best and its defaults on the test split

Per strategy: an Optuna study on the validation split until the budget is used (trials:N
finished trials, pruned and failed included; or time:DURATION of the strategy's own trial
time), then its best parameters and its defaults on the test split of every --seeds value.
A rerun continues the studies and skips finished test runs. The report opens with the
strategies statistically tied with the best tuned one and the cheapest of them by --prefer."""

# sized for a 2-core CPU: three minutes of each strategy's own trial time gives the slowest default-run
# strategies (qlora, lora) two trials, trial 0 and one searched point, and the fast ones many more
DEFAULT_BUDGET = "time:3m"
PREFER = {"train-time": "train time", "memory": "peak memory", "params": "trainable parameters",
          "latency": "serving latency (p50, one text)"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The `bench compare` flags: `bench run`'s and `bench tune`'s (bench/commands/flags.py) and its own."""
    add_config_flag(p)
    add_matrix_flags(p, strategies_help="comma-separated; default: the strategies of a plain `bench run`",
                     seeds_help="test seeds, comma-separated, e.g. 0,1,2 (default 0); their test rows are "
                     "held out of every trial's data")
    p.add_argument("--budget", default=DEFAULT_BUDGET,
                   help="per strategy: trials:N (finished trials; pruned and failed count) or time:DURATION "
                   f"(its own trial time, e.g. 5m, 90s, 1h; default {DEFAULT_BUDGET})")
    p.add_argument("--prefer", choices=sorted(PREFER), default="train-time",
                   help="among the strategies tied with the best, the report names the cheapest by this cost "
                   "(default train-time)")
    p.add_argument("--name", help="the comparison's name (default: cmp-DATASET-HASH of the data, model, params "
                   "and tuning seed); its studies are NAME-STRATEGY")
    p.add_argument("--sampler-seed", type=int, default=0, help="the TPE sampler's seed, the same for every "
                   "strategy's study (default 0)")
    add_study_flags(p, seed_help="data split and training seed of every trial (default 0)")
    add_data_flags(p)
    add_report_flags(p)
    add_launcher_flags(p)


def run_compare(args, exp) -> int:
    from bench.commands.compare.loop import run_compare as run

    return run(args, exp)


__all__ = ["DEFAULT_BUDGET", "HELP", "PREFER", "add_arguments", "run_compare"]
