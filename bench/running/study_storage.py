"""The Optuna side both processes of a tuning trial share: the study storage (SQLite by default, any
RDB URL), the pruner and sampler, and the worker's per-epoch reporter. Kept apart from the `bench tune`
command so a worker reports an epoch without importing the tuner (and the runner it drives)."""

from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable

from bench.core.errors import BenchError, Pruned, echoed
from bench.core.secrets import mask_secrets, needs_encoding

HEARTBEAT_S = 10  # the parent beats this often while its trial runs...
GRACE_S = 60  # ...so a RUNNING trial silent this long was left by a killed process
N_STARTUP_TRIALS = 5  # random trials before TPE models the space; each trial is a full training run
SQLITE_TIMEOUT_S = 60  # SQLite waits this long for another writer instead of "database is locked"


def default_storage(results_dir: str | Path) -> str:
    return f"sqlite:///{Path(results_dir).resolve() / 'optuna.db'}"


def open_storage(url: str, heartbeat: bool = False):
    """An RDBStorage for `url`; `heartbeat` enables failing the trials of killed processes."""
    if url.split("://", 1)[-1].split("?", 1)[0].count("@") > 1:
        # a driver splits at the first '@': the password's tail would be looked up as a host name (a
        # DNS query carrying it) and echoed in the driver's error
        raise BenchError(f"the storage URL {shown(url)} holds a password with '@': percent-encode it as %40 "
                         "(and / as %2F, # as %23, ? as %3F, % as %25, a space as %20), then pass it again")
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": SQLITE_TIMEOUT_S}}
    if heartbeat:
        kwargs.update(heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                      heartbeat_stale_trial_callback=_say_stale)
    try:
        return _rdb_storage(url, kwargs)
    except Exception as exc:  # a bad URL, a missing driver, an unreachable server
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        hint = ("; its password holds characters a URL reads as its own: percent-encode them (@ %40, / %2F, "
                "# %23, ? %3F, % %25, space %20)") if needs_encoding(url) else ""
        raise BenchError(f"cannot open Optuna storage {shown(url)} ({why}){hint}; pass a database URL such as "
                         "sqlite:///PATH.db or postgresql://USER@HOST/DB") from None


def _rdb_storage(url: str, kwargs: dict, attempts: int = 3):
    import optuna
    from sqlalchemy.exc import DBAPIError

    for attempt in range(attempts):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # heartbeat_interval
                return optuna.storages.RDBStorage(url, **kwargs)
        except DBAPIError:  # two processes creating one new database race on its tables; then it exists
            if attempt == attempts - 1:
                raise
            time.sleep(0.5 + attempt)


STORAGE_ENV = "FTBENCH_OPTUNA_STORAGE"  # how a trial's worker gets the storage URL: never a file or a record


def shown(url: str) -> str:
    """The URL with any password (userinfo or query string) masked, for printing."""
    return mask_secrets(url)


def _say_stale(study, trial) -> None:
    print(f"trial {trial.number}: left RUNNING by a process that stopped (no heartbeat for {GRACE_S} s); "
          "marked FAIL", flush=True)


def make_pruner(name: str):
    import optuna

    if name == "median":
        # steps are epochs counted from 1, so the earliest judgement is epoch 2: a first epoch is
        # never judged, as a one-step run (feature-extract's logreg head reports its final figure
        # as epoch 1) is finished by then and would set a median no first epoch of a longer run reaches
        return optuna.pruners.MedianPruner(n_startup_trials=2, n_warmup_steps=2)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise BenchError(f"--pruner {echoed(name)}: use median or none")


def make_sampler(seed: int | None = None):
    import optuna

    # seed=None: fresh entropy per process, so parallel workers do not propose identical points;
    # constant_liar (Optuna 5's default) keeps them off each other's running trials
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=N_STARTUP_TRIALS)


def trial_id_of(storage, study_name: str, number: int) -> int:
    """The storage's id of trial `number` of a study, through the storage's public methods."""
    return storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study_name), number)


def epoch_reporter(study_info: dict, epochs: int | None = None) -> Callable[[dict], None] | None:
    """In the worker: report each epoch's validation balanced accuracy to this run's trial (the same
    storage, study and trial number the parent asked for) and raise Pruned when the pruner says so,
    or when the trial has run past `time_left_s` (a comparison's time budget: what the study had left
    when the trial started), so a slow strategy overshoots its budget by one epoch, not a whole trial --
    never at the last of `epochs`: stopping there would save no work and only throw a finished
    trial's value away. Optuna's public API only: the storage records the value, the pruner judges
    the stored trial (what `Trial.report` and `Trial.should_prune` do inside optimize())."""
    time_left = study_info.get("time_left_s")
    if study_info.get("pruner", "none") == "none" and time_left is None:
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url = study_info.get("storage") or os.environ.get(STORAGE_ENV)
    if not url:
        raise BenchError(f"a tuning trial's worker needs the Optuna storage URL in ${STORAGE_ENV}")
    storage = open_storage(url)
    pruner = make_pruner(study_info.get("pruner", "none"))
    study = optuna.load_study(study_name=study_info["name"], storage=storage,
                              sampler=optuna.samplers.RandomSampler(),  # never samples here
                              pruner=pruner)
    trial_id = trial_id_of(storage, study_info["name"], int(study_info["trial"]))
    started = time.perf_counter()  # with the run's own clock: the budget counts the run's time

    def on_epoch(entry: dict) -> None:
        value = entry.get("val_balanced_accuracy")
        epoch = int(entry["epoch"])
        if value is not None:
            storage.set_trial_intermediate_value(trial_id, epoch, float(value))
        if epochs is not None and epoch >= int(epochs):
            return
        spent = time.perf_counter() - started
        if time_left is not None and spent >= float(time_left):
            raise Pruned(f"stopped after epoch {epoch}: {spent:.0f} s run, and its study's time budget had "
                         f"{float(time_left):.0f} s left when this trial started")
        if value is not None and pruner.prune(study, storage.get_trial(trial_id)):
            raise Pruned(f"pruned at epoch {epoch}: validation balanced accuracy {float(value):.3f} "
                         "is below the median of earlier trials at that epoch")

    return on_epoch
