"""The study of a `bench tune`: its objectives, creating or resuming it, trial 0's starting point,
and its best trial (for `bench run --params-from`). Optuna's public API only."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Callable

from bench.core.errors import BenchError, echoed
from bench.core.record import Record
from bench.running.study_storage import default_storage, make_sampler, open_storage, shown

PRIMARY = "balanced_accuracy"
# objective -> (direction, its value in an ok record)
OBJECTIVES: dict[str, tuple[str, Callable[[Record], Any]]] = {
    "balanced_accuracy": ("maximize", lambda rec: rec.metrics.balanced_accuracy),
    "train_time": ("minimize", lambda rec: rec.cost.train_seconds()),
    "peak_memory": ("minimize", lambda rec: rec.cost.headline_memory_mb()[0]),
}
SETUP_KEYS = ("strategy", "dataset", "model", "per_class", "test_from", "seed", "objectives", "split", "max_rows")


def parse_objectives(text: str) -> list[str]:
    names = [s.strip() for s in str(text).split(",") if s.strip()]
    ok = (names and names[0] == PRIMARY and len(names) <= 2 and len(set(names)) == len(names)
          and all(n in OBJECTIVES for n in names))
    if not ok:
        raise BenchError(f"--objectives {echoed(text)}: use balanced_accuracy, optionally with a second objective: "
                         "balanced_accuracy,train_time or balanced_accuracy,peak_memory")
    return names


def contains(dist, value) -> bool:
    """Whether a distribution holds `value`, from its public fields: to_internal_repr refuses a value of
    the wrong kind or a category it lacks; numbers must lie in [low, high] on the step grid."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    if value is None:
        return False
    try:
        internal = dist.to_internal_repr(value)
    except (TypeError, ValueError):
        return False
    if isinstance(dist, CategoricalDistribution):
        return True
    if not dist.low <= internal <= dist.high:
        return False
    if isinstance(dist, IntDistribution):
        return float(internal).is_integer() and (internal - dist.low) % dist.step == 0
    if dist.step is None:
        return True
    steps = (internal - dist.low) / dist.step
    return abs(steps - round(steps)) < 1e-8


class StartProbe:
    """Walks a search space with the starting parameters: `fixed` gets each searched param whose
    starting value the space contains (a value outside it, e.g. pooling 'auto', is left to the
    sampler); a conditional space follows the starting values' branch."""

    def __init__(self, start: dict):
        self.start, self.fixed = start, {}

    def _take(self, name: str, dist):
        value = self.start.get(name)
        if contains(dist, value):
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
    probe = StartProbe(params)
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
            raise BenchError(f"study '{name}' in {shown(storage.url)} was made with {key} {echoed(stored.get(key))}, "
                             f"not {echoed(setup.get(key))}; pass the same flags to resume it, or --study-name NEW")
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
