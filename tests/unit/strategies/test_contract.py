"""The contract every registered strategy keeps, checked for each one without a test of its own: a
new strategy (one module and one registry line) is checked here as soon as it is registered."""

from __future__ import annotations

import dataclasses

import optuna
import pytest

from bench.core.params import validate_params
from bench.engine.models import resolve_model
from strategies import REGISTRY, default_run, strategy_class
from strategies.shared.base import Strategy

FLOPS_KINDS = ("forward", "full", "adapter", "none")  # how bench/engine/flops.py counts a strategy's work


@pytest.fixture(scope="module", autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("name", list(REGISTRY))
def test_declares_what_the_harness_reads(name):
    cls = strategy_class(name)
    assert issubclass(cls, Strategy) and cls.name == name
    assert cls.description.strip() and cls.default_model
    assert cls.flops_kind in FLOPS_KINDS, f"{name}: flops_kind {cls.flops_kind!r}"
    assert dataclasses.is_dataclass(cls.Params)
    assert set(cls.gpu_defaults) <= {f.name for f in dataclasses.fields(cls.Params)}
    assert cls.collapse_advice is None or cls.collapse_advice.strip()


@pytest.mark.parametrize("name", list(REGISTRY))
def test_defaults_validate_and_pass_the_checks_on_the_default_model(name):
    strategy = strategy_class(name)()
    params = strategy.Params(**validate_params(strategy, {}))
    strategy.check(params, resolve_model(strategy.default_model))  # before any model loads, offline
    strategy.check_device(params, "cpu")


@pytest.mark.parametrize("name", list(REGISTRY))
def test_the_search_space_suggests_only_its_own_fields_within_their_bounds(name):
    strategy = strategy_class(name)()
    fields = {f.name for f in dataclasses.fields(strategy.Params)}
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    for i in range(15):  # random, then TPE proposals: conditional branches get visited
        trial = study.ask()
        space = strategy.search_space(trial)
        assert set(space) <= fields, f"{name} suggests unknown params {set(space) - fields}"
        validate_params(strategy, space)
        study.tell(trial, float(i % 3))
    assert study.trials[0].params, f"{name} declares no search space"


def test_the_default_run_is_the_classes_that_say_so():
    assert default_run() == [n for n in REGISTRY if strategy_class(n).in_default_run]
    assert default_run(), "a plain `bench run` needs at least one strategy"


def test_only_the_quantizing_strategies_keep_bitsandbytes_in_their_workers():
    """The worker hides bitsandbytes from every other strategy (bench/engine/four_bit.hide_bitsandbytes):
    one that quantized without saying so would find it missing."""
    keeps = {n for n in REGISTRY if strategy_class(n)().uses_bitsandbytes}
    assert keeps == {"qlora", "lora-8bit"}
    assert Strategy.uses_bitsandbytes, "a plugin that quantizes must work without declaring anything"
