"""`bench tune`'s entry point: check the flags, open the study, then run trial loops -- one in this
thread, or `--workers N` threads each asking its own trials from the one study (their runs go
through the launcher: local subprocesses here, or Ray tasks across a cluster)."""

from __future__ import annotations

import dataclasses
import math
import signal
import sys
import threading
import time

from bench.commands.launching import launcher_from_args
from bench.commands.tune.output import print_summary
from bench.commands.tune.study import OBJECTIVES, open_study, parse_objectives
from bench.commands.tune.trials import Search, TrialResult, run_trial
from bench.core.errors import BenchError
from bench.running import preloaded
from bench.running.config import Experiment, RunSpec
from bench.running.launchers import make_launcher
from bench.running.study_storage import default_storage, make_pruner, open_storage, shown


def base_spec(exp: Experiment, strategy_name: str, seed: int) -> RunSpec:
    """The experiment's one run of this strategy, validated by `plan` (data, model, params) up front."""
    from bench.running.plan import plan

    exp = dataclasses.replace(exp, strategies=[strategy_name], seeds=[seed],
                              models={k: v for k, v in exp.models.items() if k == strategy_name},
                              params={k: v for k, v in exp.params.items() if k in (strategy_name, "*")})
    return plan(exp)[0]


def study_setup(strategy, base: RunSpec, objectives: list[str]) -> dict:
    """What a study is made for (strategy, data, model, seed, objectives): a resume must match it."""
    setup = {"strategy": strategy.name, "dataset": base.dataset, "model": base.model, "per_class": base.per_class,
             "test_from": base.test_from, "seed": base.seed, "objectives": objectives}
    if base.split:  # only when set, so studies begun before split modes existed still resume
        setup.update(split=base.split, max_rows=base.max_rows)
    return setup


def user_params_of(exp: Experiment, strategy, base: RunSpec) -> set[str]:
    """The params the user set (--param, config) for this strategy: the note on overridden ones names them."""
    return set(exp.params.get(strategy.name, {})) | (set(exp.params.get("*", {})) & set(base.params))


def run_tune(args, exp: Experiment) -> int:
    import optuna

    from bench.engine.models import resolve_model
    from bench.running.runner import check_writable
    from strategies import get_strategy

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own line per trial instead
    if args.trials < 1:
        raise BenchError(f"--trials {args.trials}: give at least 1 (the number of trials to add in this run)")
    if args.timeout is not None and args.timeout <= 0:
        raise BenchError(f"--timeout {args.timeout}: give a positive number of seconds")
    workers = getattr(args, "workers", 1)
    if workers < 1:
        raise BenchError(f"--workers {workers}: give at least 1 (trial loops working on the study at once)")
    strategy = get_strategy(args.strategy)
    objectives = parse_objectives(args.objectives)
    pruner = args.pruner if len(objectives) == 1 else "none"  # Optuna cannot prune multi-objective studies
    base = base_spec(exp, strategy.name, args.seed)
    check_writable(exp.results_dir)
    url = args.storage or default_storage(exp.results_dir)
    name = args.study_name or "-".join([strategy.name, base.dataset, base.model] + objectives[1:])
    storage = open_storage(url, heartbeat=True)
    study = open_study(name, storage, study_setup(strategy, base, objectives), make_pruner(pruner),
                       start=(strategy, base.params))
    search = Search(study, storage, url, strategy, base, resolve_model(base.model), objectives, pruner,
                    exp.results_dir, bool(args.quiet), user_params_of(exp, strategy, base), workers=workers)
    earlier = sum(t.state != optuna.trial.TrialState.WAITING for t in study.get_trials(deepcopy=False))
    on = f", {workers} workers" if workers > 1 else ""
    on += f" on {args.launcher}" if getattr(args, "launcher", "local") != "local" else ""
    print(f"study '{name}' in {shown(url)}: {earlier} earlier trial(s); adding up to {args.trials} "
          f"({' and '.join(f'{OBJECTIVES[o][0]} {o}' for o in objectives)} on the validation split, "
          f"pruner {pruner}{on})", flush=True)
    launcher = launcher_from_args(args) if hasattr(args, "launcher") else make_launcher("local")
    with launcher:  # Ray started or joined here, before any model loads; let go of at the end
        search.launcher = launcher
        return _loop(search, args)


class Budget:
    """The trials this invocation may still start, shared by the trial loops."""

    def __init__(self, trials: int, timeout: float | None):
        self.left, self.timeout = trials, timeout
        self.deadline = time.monotonic() + timeout if timeout else math.inf
        self.timed_out = False
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self.left <= 0:
                return False
            if time.monotonic() >= self.deadline:
                self.timed_out = True
                return False
            self.left -= 1
            return True

    def close(self) -> None:
        with self._lock:
            self.left = 0


def trial_loop(search: Search, budget, results: list[TrialResult], worker: int = 0, stop=None) -> None:
    time_left = getattr(budget, "time_left", lambda: None)  # a comparison's time budget has one
    while not (stop is not None and stop.is_set()) and budget.take():
        run_trial(search, results, worker, stop, time_left=time_left())


def _loop(search: Search, args) -> int:
    budget = Budget(args.trials, args.timeout)
    results: list[TrialResult] = []
    interrupted = False
    try:
        run_loops(search, budget, results)
    except KeyboardInterrupt as exc:
        interrupted = getattr(exc, "signum", signal.SIGINT)
        what = "running trial is" if search.workers == 1 else "running trials are"
        print(f"interrupted: the {what} recorded cancelled and told to Optuna as FAIL", file=sys.stderr)
    if budget.timed_out:
        print(f"--timeout {args.timeout:g} s reached: no more trials started", flush=True)
    print_summary(search, results, args)
    if interrupted:
        return 128 + interrupted  # 130 after SIGINT, 143 after SIGTERM
    return 0 if any(r.state != "FAIL" for r in results) else 1


def run_loops(search: Search, budget, results: list[TrialResult]) -> None:
    """Trials while `budget.take()` says so (a Budget, or any object with take and close): one loop
    in this thread, or `search.workers` of them at once."""
    preloaded.expect(2)  # trial after trial: their workers share one server's imports
    if search.workers == 1:
        trial_loop(search, budget, results)
    else:
        _parallel_loops(search, budget, results)


def _parallel_loops(search: Search, budget, results: list[TrialResult]) -> None:
    """`search.workers` trial loops in threads. Signals reach the main thread only: it sets the stop
    flag, each loop cancels its run (recorded cancelled, told FAIL), and KeyboardInterrupt goes on up.
    A loop's error (a storage gone away) stops the others from starting trials and is raised here."""
    from bench.core.errors import Stopped
    from bench.running.runner import StopFlag

    stop, errors = StopFlag(), []

    def loop(worker: int) -> None:
        try:
            trial_loop(search, budget, results, worker, stop)
        except Stopped:
            pass  # recorded and told; the main thread reports the interrupt
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
            budget.close()

    threads = [threading.Thread(target=loop, args=(w,), name=f"trial-loop-{w}") for w in range(search.workers)]
    try:
        for t in threads:  # an interrupt between two starts must stop the loop already started too
            t.start()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(timeout=0.2)
    except KeyboardInterrupt as exc:
        stop.set(getattr(exc, "signum", signal.SIGINT))
        budget.close()
        for t in threads:
            if t.ident is not None:
                t.join()
        raise
    if errors:
        raise errors[0]
