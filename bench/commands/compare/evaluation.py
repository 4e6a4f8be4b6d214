"""The comparison's test runs: per strategy, its best trial's parameters ("tuned") and its starting
parameters ("default": the strategy's defaults with the user's --param) on the test split of every
seed, as ordinary RunSpecs for the run matrix, each carrying the protocol block."""

from __future__ import annotations

import dataclasses

from bench.commands.compare.protocol import DEFAULT, ROLE_TEST, TUNED, Protocol
from bench.running.config import Experiment, RunSpec


def strategy_experiment(exp: Experiment, strategy: str, params: dict | None = None) -> Experiment:
    """The experiment narrowed to one strategy, its params replaced by `params` where given."""
    own = dict(exp.params.get(strategy, {}))
    own.update(params or {})
    kept = {k: v for k, v in exp.params.items() if k == "*"}
    return dataclasses.replace(exp, strategies=[strategy], models={k: v for k, v in exp.models.items() if k == strategy},
                               params={**kept, **({strategy: own} if own else {})})


def test_specs(exp: Experiment, protocol: Protocol, strategy: str, variant: str, params: dict | None = None,
               best_trial: int | None = None) -> list[RunSpec]:
    """One spec per seed of `exp`: the strategy's `variant` run on the test split."""
    from bench.running.plan import plan

    block = protocol.block(strategy, ROLE_TEST, variant, best_trial=best_trial if variant == TUNED else None)
    return [dataclasses.replace(spec, comparison=block)
            for spec in plan(strategy_experiment(exp, strategy, params), check_data=False)]


def all_test_specs(exp: Experiment, protocol: Protocol, outcomes: list) -> list[RunSpec]:
    """Defaults and tuned, strategy by strategy; a strategy whose study has no complete trial yet
    runs its defaults only."""
    specs: list[RunSpec] = []
    for out in outcomes:
        specs += test_specs(exp, protocol, out.strategy, DEFAULT)
        if out.best_number is not None:
            specs += test_specs(exp, protocol, out.strategy, TUNED, out.best_params, out.best_number)
    return specs
