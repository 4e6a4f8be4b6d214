"""`bench compare`'s entry point: check everything, then each strategy's study to its budget, then
the test runs through the launcher's run matrix, then the report."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

from bench.commands.compare.evaluation import all_test_specs
from bench.commands.compare.output import final_table, study_line
from bench.commands.compare.protocol import Protocol, check_name, comparison_name
from bench.commands.compare.studies import Tuning, check_held_out, tune_strategy
from bench.commands.launching import launcher_from_args
from bench.commands.rendering import render_after_runs
from bench.core.budget import parse_budget
from bench.core.errors import BenchError
from bench.running.config import Experiment
from bench.running.study_storage import default_storage, open_storage, shown


def run_compare(args, exp: Experiment) -> int:
    import optuna

    from bench.running.plan import plan
    from bench.running.runner import ResultsUnwritable, check_writable

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own line per trial instead
    budget = parse_budget(args.budget)
    if args.workers < 1:
        raise BenchError(f"--workers {args.workers}: give at least 1 (trial loops working on a study at once)")
    if getattr(args, "train_sizes", None):
        raise BenchError("bench compare tunes on the full train split; run --train-sizes curves with `bench run`")
    specs = plan(exp)  # every strategy, model, param and seed's data checked before anything runs
    strategies = list(dict.fromkeys(s.strategy for s in specs))
    name = check_name(args.name) if args.name else comparison_name(exp, args.seed, specs[0].device)
    protocol = Protocol(name, budget, args.prefer)
    check_writable(exp.results_dir)
    if not args.no_report:
        check_writable(Path(args.output).parent, "report folder", "-o")
    url = args.storage or default_storage(exp.results_dir)
    storage = open_storage(url, heartbeat=True)
    launcher = launcher_from_args(args)  # Ray started or joined here, before any model loads
    print(f"comparison '{name}': {', '.join(strategies)}; budget {budget.text()} ({budget.words()}) per strategy; "
          f"test seeds {','.join(map(str, exp.seeds))}; tie-break by {args.prefer}; studies in {shown(url)}"
          + ("" if args.launcher == "local" else f", runs on {args.launcher}"), flush=True)
    tuning = Tuning(exp, protocol, storage, url, list(exp.seeds), args.seed, args.sampler_seed, args.pruner,
                    args.workers, launcher, bool(args.quiet))
    check_held_out(tuning, strategies)
    studies, runs, stopped, code = [], [], None, 0
    try:
        with launcher:
            for strategy in strategies:
                studies.append(tune_strategy(tuning, strategy))
                print(study_line(studies[-1], budget), flush=True)
            tests = all_test_specs(exp, protocol, studies)
            print(f"\ntest runs: {len(tests)} (defaults and best parameters, seeds "
                  f"{','.join(map(str, exp.seeds))}) -> {exp.results_dir}/", flush=True)
            runs = launcher.run_matrix(tests, exp.results_dir, force=args.force, quiet=args.quiet)
    except KeyboardInterrupt as exc:
        stopped = getattr(exc, "signum", signal.SIGINT)
        words = "terminated (SIGTERM)" if stopped == signal.SIGTERM else "interrupted"
        print(f"{words}: the running run is recorded cancelled (a trial's is told FAIL and uses no budget); "
              "rerun the same command to continue", file=sys.stderr)
    except ResultsUnwritable as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    if studies and not stopped:
        print("\n" + "\n".join(final_table(studies, runs, budget)))
    if not args.no_report:
        render_after_runs(exp.results_dir, args.output)
    if stopped:
        return 128 + stopped
    bad = [o for o in runs if o.status not in ("ok", "skipped")]
    return 1 if bad or code else 0
