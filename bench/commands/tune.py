"""`bench tune`: an Optuna study over one strategy's search space, each trial an ordinary recorded run.

- The parent asks Optuna for a trial, merges the strategy's `search_space(trial)` over the
  experiment's params, and runs that as its own worker process (`runner.run_one`) evaluating on the
  validation split (the test split is never looked at during a search). It then tells Optuna the
  objective(s) read from the run's record; the trial's run_id is a trial user attr, the study name
  and trial number are in the record, so records and study can be joined.
- Pruning: the worker reconnects to the same storage and trial (`epoch_reporter`), reports each
  epoch's validation balanced accuracy and stops when the pruner says so (record status "pruned").
  Single-objective studies only: Optuna does not prune multi-objective ones.
- Storage: SQLite under the results folder by default, so a killed study resumes and its trial
  numbers continue; `--trials N` means N more trials in this invocation. Any Optuna storage URL
  works, and several `bench tune` processes may work on one study at once.
- A trial whose process was killed stays RUNNING. The parent beats a heartbeat while its trial
  runs; a RUNNING trial silent for GRACE_S is marked FAIL by the next process that asks for a trial.
  (Meanwhile it blocks nothing: TPE treats running trials as pending.)
- `--param` / config params are the base every trial starts from; a param the search space
  samples takes the sampled value (a note says so once).
- Trial 0 of a new study runs the starting parameters (defaults plus --param), so the best trial
  is never worse than the untuned run and the history shows what tuning bought.
- The TPE sampler is seeded from fresh entropy in every process: two processes with one seed would
  propose the same points. `--seed` is the data split and training seed of every trial.
"""

from __future__ import annotations

import dataclasses
import math
import shlex
import signal
import sys
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.running.config import Experiment, RunSpec, coerce_params
from bench.core.errors import BenchError
from bench.core.record import Record
from bench.running.study_storage import (HEARTBEAT_S, STORAGE_ENV, default_storage, make_pruner, make_sampler,
                                 open_storage, shown)

PRIMARY = "balanced_accuracy"
# objective -> (direction, its value in an ok record)
OBJECTIVES: dict[str, tuple[str, Callable[[Record], Any]]] = {
    "balanced_accuracy": ("maximize", lambda rec: rec.metrics.balanced_accuracy),
    "train_time": ("minimize", lambda rec: rec.cost.train_seconds()),
    "peak_memory": ("minimize", lambda rec: rec.cost.headline_memory_mb()[0]),
}
VALUE_FORMATS = {"balanced_accuracy": "{:.4f}", "train_time": "{:.2f} s", "peak_memory": "{:.0f} MB"}
SETUP_KEYS = ("strategy", "dataset", "model", "per_class", "test_from", "seed", "objectives", "split", "max_rows")


# ---------------------------------------------------------------- the study (storage, pruner, sampler: bench/running/study_storage.py)

def parse_objectives(text: str) -> list[str]:
    names = [s.strip() for s in str(text).split(",") if s.strip()]
    ok = (names and names[0] == PRIMARY and len(names) <= 2 and len(set(names)) == len(names)
          and all(n in OBJECTIVES for n in names))
    if not ok:
        raise BenchError(f"--objectives {text!r}: use balanced_accuracy, optionally with a second objective: "
                         "balanced_accuracy,train_time or balanced_accuracy,peak_memory")
    return names


class _StartProbe:
    """Walks a search space with the starting parameters: `fixed` gets each searched param whose
    starting value the space contains (a value outside it, e.g. pooling 'auto', is left to the
    sampler); a conditional space follows the starting values' branch."""

    def __init__(self, start: dict):
        self.start, self.fixed = start, {}

    def _take(self, name: str, dist):
        value = self.start.get(name)
        try:
            inside = value is not None and dist._contains(dist.to_internal_repr(value))
        except (TypeError, ValueError):
            inside = False
        if inside:
            self.fixed[name] = value
            return value
        return dist.choices[0] if hasattr(dist, "choices") else dist.low

    def suggest_float(self, name, low, high, *, step=None, log=False):
        from optuna.distributions import FloatDistribution

        return self._take(name, FloatDistribution(low, high, step=step, log=log))

    def suggest_int(self, name, low, high, step=1, log=False):
        from optuna.distributions import IntDistribution

        return self._take(name, IntDistribution(low, high, step=step, log=log))

    def suggest_categorical(self, name, choices):
        from optuna.distributions import CategoricalDistribution

        return self._take(name, CategoricalDistribution(choices))


def enqueue_starting_point(study, strategy, params: dict) -> None:
    """A new study's first trial runs the starting parameters (the strategy's defaults with the
    user's --param) wherever the search space contains them: the search then has the untuned
    figure to beat, and its best is never worse than it."""
    probe = _StartProbe(params)
    strategy.search_space(probe)
    if probe.fixed:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # enqueue_trial(skip_if_exists=...) is marked experimental
            study.enqueue_trial(probe.fixed, skip_if_exists=True)


def open_study(name: str, storage, setup: dict, pruner, start: tuple | None = None):
    """Create the study or resume it; refuse one made for another strategy, data, model or objectives."""
    import optuna

    directions = [OBJECTIVES[o][0] for o in setup["objectives"]]
    study = optuna.create_study(study_name=name, storage=storage, sampler=make_sampler(), pruner=pruner,
                                directions=directions, load_if_exists=True)
    stored = study.user_attrs
    if "strategy" not in stored:
        if study.get_trials(deepcopy=False):
            raise BenchError(f"study '{name}' in {shown(storage.url)} was not made by `bench tune`; "
                             "pass --study-name NEW for a new study")
        for key in SETUP_KEYS:  # `bench run --params-from` reads the strategy from here
            if setup.get(key) is not None:
                study.set_user_attr(key, setup[key])
        if start is not None:  # (strategy, starting params)
            enqueue_starting_point(study, *start)
        return study
    for key in SETUP_KEYS:
        if stored.get(key) != setup.get(key):
            raise BenchError(f"study '{name}' in {shown(storage.url)} was made with {key} {stored.get(key)!r}, "
                             f"not {setup.get(key)!r}; pass the same flags to resume it, or --study-name NEW")
    return study


def load_existing_study(name: str, url: str):
    import optuna

    sqlite_path = _sqlite_file(url)
    storage = None if sqlite_path is not None and not sqlite_path.exists() else open_storage(url)
    names = optuna.get_all_study_names(storage) if storage is not None else []
    if name not in names:
        there = f" (studies there: {', '.join(names)})" if names else ""
        raise BenchError(f"no study '{name}' in {shown(url)}{there}; run `bench tune --strategy STRATEGY "
                         f"--study-name {name}` first or pass --storage")
    return optuna.load_study(study_name=name, storage=storage, sampler=optuna.samplers.RandomSampler())


def _sqlite_file(url: str) -> Path | None:
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - open_storage reports it
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


# ---------------------------------------------------------------- one trial

@dataclass
class Search:
    """One `bench tune` invocation: what every trial shares."""

    study: Any  # optuna.Study
    storage: Any  # its RDBStorage (heartbeats)
    url: str
    strategy: Any
    base: RunSpec  # the experiment's own run (test split): params before the search space
    model: Any  # base.model resolved, for the strategy's checks of each trial's params
    objectives: list[str]
    pruner: str  # "median" | "none"; the worker rebuilds the same pruner
    results_dir: str
    quiet: bool
    user_params: set[str] = field(default_factory=set)  # set by --param / config
    noted: set[str] = field(default_factory=set)  # user params we already said the space overrides


@dataclass
class TrialResult:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    values: list[float] | None
    space: dict
    seconds: float
    note: str = ""  # why it was pruned or failed


def ask_trial(search: Search):
    """Fail trials of killed processes, then a new trial (numbers continue across processes)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # fail_stale_trials
        warnings.filterwarnings("ignore", message="Heartbeat of storage")  # we beat ourselves, not optimize()
        optuna.storages.fail_stale_trials(search.study)
        return search.study.ask()


def trial_spec(search: Search, trial, space: dict) -> RunSpec:
    """The trial's run: the space over the experiment's params, scored on the validation split."""
    params = coerce_params(search.strategy, {**search.base.params, **space})
    search.strategy.check(search.strategy.Params(**params), search.model)
    # no storage URL here: the spec goes into the record, and the URL may hold a password (run_one
    # hands it to the worker in its environment instead)
    study_info = {"name": search.study.study_name, "trial": trial.number,
                  "trial_id": trial._trial_id, "objective": PRIMARY, "objectives": search.objectives,
                  "pruner": search.pruner}
    return dataclasses.replace(search.base, params=params, eval_split="val", study=study_info)


def tuned_overrides(params: dict, space: dict, strategy) -> dict:
    """What `bench run --params-from` must set: the searched params and any other non-default one."""
    defaults = dataclasses.asdict(strategy.Params())
    return {k: v for k, v in params.items() if k in space or v != defaults.get(k)}


def objective_values(record: Record | None, objectives: list[str]) -> list[float] | None:
    try:
        values = [float(OBJECTIVES[o][1](record)) for o in objectives]
    except (AttributeError, KeyError, TypeError, ValueError):  # a figure the record lacks
        return None
    return values if all(math.isfinite(v) for v in values) else None


@contextmanager
def heartbeat(storage, trial_id: int):
    """Beat while a trial runs, so another `bench tune` can tell it from one whose process was killed."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            try:
                storage.record_heartbeat(trial_id)
            except Exception:  # noqa: BLE001 - a busy database this once; the next beat counts
                pass
            stop.wait(HEARTBEAT_S)

    thread = threading.Thread(target=beat, name="optuna-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def run_trial(search: Search, results: list[TrialResult]) -> None:
    """Ask, run one recorded run, tell; the result goes to `results`. Ctrl-C: the trial is told FAIL
    and listed, then KeyboardInterrupt."""
    from optuna.trial import TrialState

    from bench.running.runner import Interrupted, run_one

    trial = ask_trial(search)
    t0 = time.perf_counter()
    space: dict = {}
    try:
        space = search.strategy.search_space(trial)
        _note_overridden(search, space)
        spec = trial_spec(search, trial, space)
    except BenchError as exc:  # a sampled combination the strategy refuses: this trial fails, the study goes on
        search.study.tell(trial, state=TrialState.FAIL)
        results.append(_report(TrialResult(trial.number, "FAIL", None, space, time.perf_counter() - t0, str(exc)),
                               search.objectives))
        return
    except BaseException:
        search.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    trial.set_user_attr("run_id", spec.run_id)
    trial.set_user_attr("params", tuned_overrides(spec.params, space, search.strategy))
    interrupted = False
    try:
        with heartbeat(search.storage, trial._trial_id):
            outcome = run_one(spec, search.results_dir, quiet=search.quiet, secret_env={STORAGE_ENV: search.url})
    except Interrupted as stop:  # the runner recorded the run "cancelled"
        outcome, interrupted = stop.outcome, stop
    except BaseException:
        search.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    results.append(_report(tell(search, trial, outcome, space), search.objectives))
    if interrupted:
        raise interrupted


def tell(search: Search, trial, outcome, space: dict) -> TrialResult:
    """Tell Optuna what the record says: ok -> COMPLETE with its values, pruned -> PRUNED, else FAIL."""
    from optuna.trial import TrialState

    record = outcome.record
    error = record.error if record is not None else None
    values = objective_values(record, search.objectives) if outcome.status == "ok" else None
    # skip_if_finished: another process may have failed it as stale while a beat was lost
    if values is not None:
        search.study.tell(trial, values if len(values) > 1 else values[0], skip_if_finished=True)
        state, note = "COMPLETE", ""
    elif outcome.status == "pruned":
        search.study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
        state, note = "PRUNED", error or ""
    else:
        search.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        note = error or f"the ok record lacks {', '.join(search.objectives)}"
        state, note = "FAIL", f"{outcome.status}: {note}"
    return TrialResult(trial.number, state, values, space, outcome.seconds, note)


def _note_overridden(search: Search, space: dict) -> None:
    for name in sorted((search.user_params & set(space)) - search.noted):
        search.noted.add(name)
        print(f"note: '{name}' is in {search.strategy.name}'s search space; the value given with --param is "
              "not used while tuning", flush=True)


# ---------------------------------------------------------------- output

def fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def fmt_params(params: dict) -> str:
    return " ".join(f"{k}={fmt(v)}" for k, v in params.items())


def fmt_values(objectives: list[str], values) -> str:
    return ", ".join(f"{o} {VALUE_FORMATS[o].format(float(v))}" for o, v in zip(objectives, values))


def _report(r: TrialResult, objectives: list[str]) -> TrialResult:
    """The trial's progress line."""
    what = fmt_values(objectives, r.values) if r.values else r.state
    note = f"  ({r.note})" if r.note else ""
    width = 26 * len(objectives)  # the values column lines up
    print(f"trial {r.number:>3}  {what:<{width}s} {r.seconds:6.1f} s  {fmt_params(r.space)}{note}", flush=True)
    return r


def best_trial(study):
    """The best complete trial; on a Pareto front, the one with the best first objective (balanced accuracy)."""
    try:
        if len(study.directions) == 1:
            return study.best_trial
        front = study.best_trials
    except ValueError:  # no complete trial yet
        return None
    return max(front, key=lambda t: t.values[0]) if front else None


def tuned_params(trial, strategy) -> dict:
    stored = trial.user_attrs.get("params")
    if isinstance(stored, dict):
        return stored
    fields = set(strategy.Params.__dataclass_fields__)  # a trial told by hand: its params by field name
    return {k: v for k, v in trial.params.items() if k in fields}


RERUN_FLAGS = ("config", "dataset", "text_col", "label_col", "data_opt", "per_class", "split", "max_rows",
               "split_col", "test_from", "model", "results_dir", "storage")


def rerun_command(args, study_name: str) -> str:
    parts = ["bench", "run", "--strategies", args.strategy, "--params-from", study_name]
    for attr in RERUN_FLAGS:
        value = getattr(args, attr, None)
        for item in (value if isinstance(value, list) else [value] if value else []):  # --data-opt repeats
            parts += [f"--{attr.replace('_', '-')}", shown(str(item))]
    return shlex.join(parts + ["--seeds", "0,1,2"])


def print_summary(search: Search, results: list[TrialResult], args) -> None:
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


# ---------------------------------------------------------------- entry points

def base_spec(exp: Experiment, strategy_name: str, seed: int) -> RunSpec:
    """The experiment's one run of this strategy, validated by `plan` (data, model, params) up front."""
    from bench.running.plan import plan

    exp = dataclasses.replace(exp, strategies=[strategy_name], seeds=[seed],
                              models={k: v for k, v in exp.models.items() if k == strategy_name},
                              params={k: v for k, v in exp.params.items() if k in (strategy_name, "*")})
    return plan(exp)[0]


def run_tune(args, exp: Experiment) -> int:
    import optuna

    from bench.engine.models import resolve_model
    from strategies import get_strategy

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own line per trial instead
    if args.trials < 1:
        raise BenchError(f"--trials {args.trials}: give at least 1 (the number of trials to add in this run)")
    if args.timeout is not None and args.timeout <= 0:
        raise BenchError(f"--timeout {args.timeout}: give a positive number of seconds")
    strategy = get_strategy(args.strategy)
    objectives = parse_objectives(args.objectives)
    pruner = args.pruner if len(objectives) == 1 else "none"  # Optuna cannot prune multi-objective studies
    base = base_spec(exp, strategy.name, args.seed)
    from bench.running.runner import check_writable

    check_writable(exp.results_dir)
    url = args.storage or default_storage(exp.results_dir)
    name = args.study_name or "-".join([strategy.name, base.dataset, base.model] + objectives[1:])
    setup = {"strategy": strategy.name, "dataset": base.dataset, "model": base.model, "per_class": base.per_class,
             "test_from": base.test_from, "seed": base.seed, "objectives": objectives}
    if base.split:  # only when set, so studies begun before split modes existed still resume
        setup.update(split=base.split, max_rows=base.max_rows)
    storage = open_storage(url, heartbeat=True)
    study = open_study(name, storage, setup, make_pruner(pruner), start=(strategy, base.params))
    user_params = set(exp.params.get(strategy.name, {})) | (set(exp.params.get("*", {})) & set(base.params))
    search = Search(study, storage, url, strategy, base, resolve_model(base.model), objectives, pruner,
                    exp.results_dir, bool(args.quiet), user_params)
    earlier = sum(t.state != optuna.trial.TrialState.WAITING for t in study.get_trials(deepcopy=False))
    print(f"study '{name}' in {shown(url)}: {earlier} earlier trial(s); adding up to {args.trials} "
          f"({' and '.join(f'{OBJECTIVES[o][0]} {o}' for o in objectives)} on the validation split, "
          f"pruner {pruner})", flush=True)
    return _loop(search, args)


def _loop(search: Search, args) -> int:
    deadline = time.monotonic() + args.timeout if args.timeout else math.inf
    results: list[TrialResult] = []
    interrupted = False
    try:
        for _ in range(args.trials):
            if time.monotonic() >= deadline:
                print(f"--timeout {args.timeout:g} s reached: no more trials started", flush=True)
                break
            run_trial(search, results)
    except KeyboardInterrupt as exc:
        interrupted = getattr(exc, "signum", signal.SIGINT)
        print("interrupted: the running trial is recorded cancelled and told to Optuna as FAIL", file=sys.stderr)
    print_summary(search, results, args)
    if interrupted:
        return 128 + interrupted  # 130 after SIGINT, 143 after SIGTERM
    return 0 if any(r.state != "FAIL" for r in results) else 1


def best_params_for(study_name: str, storage: str | None, results_dir: str | Path) -> tuple[str, dict]:
    """(strategy, its best params by Params field name) of a `bench tune` study, for `bench run --params-from`."""
    import optuna

    from strategies import get_strategy

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = storage or default_storage(results_dir)
    study = load_existing_study(study_name, url)
    strategy_name = study.user_attrs.get("strategy")
    if not strategy_name:
        raise BenchError(f"study '{study_name}' in {shown(url)} was not made by `bench tune` (no strategy "
                         "recorded); tune with `bench tune --strategy ...`")
    best = best_trial(study)
    if best is None:
        raise BenchError(f"study '{study_name}' has no complete trial yet; run `bench tune --strategy "
                         f"{strategy_name} --study-name {study_name}` until one completes")
    return strategy_name, tuned_params(best, get_strategy(strategy_name))
