"""One strategy's study of a comparison, run to its budget by `bench tune`'s own trial loop: the same
Search, trials, pruner and launcher; only the budget (compare/budget.py), the seeded sampler and the
protocol block on every trial's run are the comparison's own."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.commands.compare.budget import StudyBudget, study_usage
from bench.commands.compare.protocol import ROLE_TRIAL, Protocol, check_tuning_pool
from bench.commands.tune import (PRIMARY, Search, base_spec, best_trial, make_pruner, open_study, run_loops,
                                 study_setup, tuned_params, user_params_of)
from bench.core.errors import BenchError
from bench.running.config import Experiment
from bench.running.study_storage import make_sampler, shown


@dataclass
class StudyOutcome:
    """Where one strategy's study stands after this invocation."""

    strategy: str
    study: Any  # optuna.Study
    n_used: int
    seconds_used: float
    states: dict[str, int]  # COMPLETE / PRUNED / FAIL over the whole study
    best_number: int | None = None
    best_value: float | None = None
    best_params: dict = field(default_factory=dict)
    start_value: float | None = None  # trial 0: the starting (default) parameters on validation
    stopped_why: str | None = None


@dataclass
class Tuning:
    """What every study of one `bench compare` shares."""

    exp: Experiment
    protocol: Protocol
    storage: Any  # RDBStorage, heartbeats on
    url: str
    seeds: list[int]  # the test seeds: their test rows are held out of every trial's pool
    tune_seed: int
    sampler_seed: int
    pruner: str
    workers: int
    launcher: Any
    quiet: bool


def sampler_seed_for(seed: int, n_trials: int) -> int:
    """The sampler's seed as the study resumes: the comparison's one seed, stepped by the trials the
    study already has, so a rerun does not propose its first points again."""
    return int(np.random.SeedSequence([seed, n_trials]).generate_state(1)[0])


def held_out_seeds(study, seeds: list[int], keep: bool = True) -> list[int]:
    """The seeds whose test rows this study's trials never had: set when its first trial starts
    (`keep`); a later test seed outside them would be scored on rows the tuning may have trained on."""
    from optuna.trial import TrialState

    stored = study.user_attrs.get("holdout_seeds")
    started = any(t.state != TrialState.WAITING for t in study.get_trials(deepcopy=False))
    if stored is None or not started:
        if keep:
            study.set_user_attr("holdout_seeds", sorted(seeds))
        return sorted(seeds)
    if not set(seeds) <= set(stored):
        extra = ",".join(str(s) for s in sorted(set(seeds) - set(stored)))
        raise BenchError(f"study '{study.study_name}' was tuned with the test rows of seeds "
                         f"{','.join(map(str, stored))} held out, not those of seed(s) {extra}, which its trials "
                         "may have trained on: compare on seeds among those, or pass --name NEW for a new comparison")
    return list(stored)


def check_held_out(t: "Tuning", strategies: list[str]) -> None:
    """Before any study runs a trial: every existing study of the comparison held out the test rows
    of every seed asked for (one error naming the study otherwise)."""
    import optuna

    names = set(optuna.get_all_study_names(t.storage))
    for strategy in strategies:
        name = t.protocol.study_name(strategy)
        if name in names:
            study = optuna.load_study(study_name=name, storage=t.storage, sampler=optuna.samplers.RandomSampler())
            held_out_seeds(study, t.seeds, keep=False)


def tune_strategy(t: Tuning, strategy_name: str, say=print) -> StudyOutcome:
    from bench.engine.models import resolve_model
    from strategies import get_strategy

    strategy = get_strategy(strategy_name)
    base = base_spec(t.exp, strategy.name, t.tune_seed)
    name = t.protocol.study_name(strategy.name)
    study = open_study(name, t.storage, study_setup(strategy, base, [PRIMARY]), make_pruner(t.pruner),
                       start=(strategy, base.params))
    holdout = held_out_seeds(study, t.seeds)
    check_tuning_pool(base, holdout)
    study.sampler = make_sampler(sampler_seed_for(t.sampler_seed, len(study.get_trials(deepcopy=False))))
    base = dataclasses.replace(base, holdout_seeds=holdout,
                               comparison=t.protocol.block(strategy.name, ROLE_TRIAL, holdout_seeds=holdout))
    search = Search(study, t.storage, t.url, strategy, base, resolve_model(base.model), [PRIMARY], t.pruner,
                    t.exp.results_dir, t.quiet, user_params_of(t.exp, strategy, base), launcher=t.launcher,
                    workers=t.workers)
    n_used, seconds = study_usage(study)
    say(f"\n{strategy.name}: study '{name}' in {shown(t.url)}: {t.protocol.budget.use_words(n_used, seconds)} "
        f"used so far (validation balanced accuracy, pruner {t.pruner}"
        + (f", {t.workers} workers" if t.workers > 1 else "") + ")", flush=True)
    results: list = []
    budget = StudyBudget(study, t.protocol.budget, results, say=say, storage=t.storage, results_dir=t.exp.results_dir)
    run_loops(search, budget, results)
    return outcome_of(strategy, study, budget.stopped_why)


def outcome_of(strategy, study, stopped_why: str | None = None) -> StudyOutcome:
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    states = {s: sum(t.state == getattr(TrialState, s) for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL")}
    n_used, seconds = study_usage(study)
    out = StudyOutcome(strategy.name, study, n_used, seconds, states, stopped_why=stopped_why)
    best = best_trial(study)
    if best is not None:
        out.best_number, out.best_value = best.number, float(best.value)
        out.best_params = tuned_params(best, strategy)
    first = next((t for t in trials if t.number == 0 and t.state == TrialState.COMPLETE), None)
    out.start_value = float(first.value) if first is not None else None
    return out
