"""One trial of a `bench tune`: ask Optuna, run the sampled parameters as an ordinary recorded run
(through the launcher, on the validation split), tell Optuna what the record says. Several trial
loops may call `run_trial` at once (`--workers N`): each asks its own trial from the shared study."""

from __future__ import annotations

import dataclasses
import math
import os
import platform
import threading
import time
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from bench.commands.tune.output import trial_line
from bench.commands.tune.study import OBJECTIVES, PRIMARY
from bench.core.record import Record
from bench.core.errors import BenchError, Stopped
from bench.core.params import validate_params
from bench.running.config import RunSpec
from bench.running.study_storage import HEARTBEAT_S, STORAGE_ENV, trial_id_of


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
    launcher: Any = None  # bench.running.launchers.Launcher; None: the local one
    workers: int = 1


@dataclass
class TrialResult:
    number: int
    state: str  # COMPLETE | PRUNED | FAIL
    values: list[float] | None
    space: dict
    seconds: float
    note: str = ""  # why it was pruned or failed
    worker: int = 0  # which trial loop ran it


_ASK_LOCK = threading.Lock()  # one ask at a time per process: the stale-trial sweep and numbering stay simple


def ask_trial(search: Search):
    """Fail trials of killed processes, then a new trial (numbers continue across processes)."""
    import optuna

    with _ASK_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # fail_stale_trials
        warnings.filterwarnings("ignore", message="Heartbeat of storage")  # we beat ourselves, not optimize()
        optuna.storages.fail_stale_trials(search.study)
        return search.study.ask()


def trial_spec(search: Search, trial, space: dict, time_left: float | None = None) -> RunSpec:
    """The trial's run: the space over the experiment's params, scored on the validation split;
    `time_left`: the seconds of its study's time budget left as it starts (its worker stops it at an
    epoch's end past them: study_storage.epoch_reporter)."""
    params = validate_params(search.strategy, {**search.base.params, **space})
    search.strategy.check(search.strategy.Params(**params), search.model)
    # no storage URL here: the spec goes into the record, and the URL may hold a password (the
    # launcher hands it to the worker in its environment instead); the worker finds the trial by number
    study_info = {"name": search.study.study_name, "trial": trial.number, "objective": PRIMARY,
                  "objectives": search.objectives, "pruner": search.pruner}
    if time_left is not None:
        study_info["time_left_s"] = round(max(0.0, time_left), 1)
    return dataclasses.replace(search.base, params=params, eval_split="val", study=study_info)


def tuned_overrides(params: dict, space: dict, strategy) -> dict:
    """What `bench run --params-from` must set: the searched params and any other non-default one."""
    defaults = dataclasses.asdict(strategy.Params())
    return {k: v for k, v in params.items() if k in space or v != defaults.get(k)}


def objective_values(record: "Record | None", objectives: list[str]) -> list[float] | None:
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


def run_trial(search: Search, results: list[TrialResult], worker: int = 0, stop=None,
              time_left: float | None = None) -> None:
    """Ask, run one recorded run, tell; the result goes to `results`. Ctrl-C (or `stop` set by the
    main thread): the trial is told FAIL and listed, then errors.Stopped goes on up."""
    from optuna.trial import TrialState

    trial = ask_trial(search)
    t0 = time.perf_counter()
    space: dict = {}
    try:
        space = search.strategy.search_space(trial)
        _note_overridden(search, space)
        spec = trial_spec(search, trial, space, time_left)
    except BenchError as exc:  # a sampled combination the strategy refuses: this trial fails, the study goes on
        trial.set_user_attr("record_status", "refused")
        search.study.tell(trial, state=TrialState.FAIL)
        results.append(trial_line(TrialResult(trial.number, "FAIL", None, space, time.perf_counter() - t0, str(exc),
                                              worker), search.objectives, search.workers))
        return
    except BaseException:
        search.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    trial.set_user_attr("run_id", spec.run_id)
    trial.set_user_attr("params", tuned_overrides(spec.params, space, search.strategy))
    trial.set_user_attr("worker", f"{platform.node()}:{os.getpid()}/{worker}")  # which trial loop asked it
    interrupted = False
    try:
        with heartbeat(search.storage, trial_id_of(search.storage, search.study.study_name, trial.number)):
            outcome = _launcher(search).run_one(spec, search.results_dir, quiet=search.quiet,
                                                secret_env={STORAGE_ENV: search.url}, stop=stop)
    except Stopped as stopped:
        if stopped.outcome is None:  # stopped before the run had an outcome
            search.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        outcome, interrupted = stopped.outcome, stopped  # the runner recorded the run "cancelled"
    except BaseException:
        search.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
        raise
    result = tell(search, trial, outcome, space)
    result.worker = worker
    results.append(trial_line(result, search.objectives, search.workers))
    if interrupted:
        raise interrupted


def _launcher(search: Search):
    if search.launcher is None:
        from bench.running.launchers import make_launcher

        search.launcher = make_launcher("local")
    return search.launcher


def tell(search: Search, trial, outcome, space: dict) -> TrialResult:
    """Tell Optuna what the record says: ok -> COMPLETE with its values, pruned -> PRUNED, else FAIL."""
    from optuna.trial import TrialState

    record = outcome.record
    error = record.error if record is not None else None
    values = objective_values(record, search.objectives) if outcome.status == "ok" else None
    note_spent(trial, outcome)
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


def note_spent(trial, outcome) -> None:
    """What the trial's run ended as and the seconds it spent, kept with the trial (set before it is
    told: a finished trial takes no attributes), so a budget is counted from the study alone: the
    record's own clock where it states one, else the run's wall time."""
    from optuna.exceptions import UpdateFinishedTrialError

    record = outcome.record
    spent = record.cost.spent_seconds() if record is not None and record.cost is not None else None
    try:
        trial.set_user_attr("record_status", outcome.status)
        trial.set_user_attr("spent_s", round(float(spent if spent is not None else outcome.seconds), 3))
        trial.set_user_attr("spent_basis", "record" if spent is not None else "wall")
    except UpdateFinishedTrialError:  # failed as stale by another process meanwhile: it counts as left
        pass


def _note_overridden(search: Search, space: dict) -> None:
    for name in sorted((search.user_params & set(space)) - search.noted):
        search.noted.add(name)
        print(f"note: '{name}' is in {search.strategy.name}'s search space; the value given with --param is "
              "not used while tuning", flush=True)
