"""The repository's experiment files (experiments/NAME.yaml): each parses, keeps its records in
experiments/records/NAME, and runs what its name promises."""

from __future__ import annotations

import dataclasses

import pytest

from bench.running.config import Experiment
from bench.running.plan import plan
from strategies import REGISTRY, strategy_names
from tests.conftest import ROOT

EXPERIMENTS = sorted((ROOT / "experiments").glob("*.yaml"))


def load(name: str) -> Experiment:
    return Experiment.from_yaml(ROOT / "experiments" / f"{name}.yaml")


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_each_experiment_keeps_its_records_under_its_own_name(path):
    exp = Experiment.from_yaml(path)
    assert exp.results_dir == f"experiments/records/{path.stem}"
    assert (ROOT / exp.results_dir).is_dir()  # kept by a .gitkeep until its first records


def test_the_published_experiments_are_there():
    assert {p.stem for p in EXPERIMENTS} >= {"default-run", "all-strategies", "decoders-gpu",
                                             "instruct-ft-vs-zero-shot", "setfit-vs-feature-extract"}


def test_default_run_is_a_plain_bench_run_at_seed_0():
    exp = load("default-run")
    plain = Experiment()
    assert dataclasses.replace(exp, results_dir=plain.results_dir) == plain and plain.seeds == [0]
    assert [s.run_id for s in plan(exp, check_data=False)] == [s.run_id for s in plan(plain, check_data=False)]


def test_all_strategies_reads_the_registry():
    exp = load("all-strategies")
    assert exp.strategies == ["all"] and exp.seeds == [0]
    specs = plan(exp, check_data=False)
    assert [s.strategy for s in specs] == list(REGISTRY)
    assert {s.model for s in specs} <= {"minilm", "smollm2", "none"}  # every one at its default model (tfidf: none)


def test_all_expands_in_registry_order_and_names_each_strategy_once():
    assert strategy_names(["all"]) == list(REGISTRY)
    assert strategy_names(["lora", "all", "lora"])[:2] == ["lora", "zero-shot"]
    assert len(strategy_names(["lora", "all"])) == len(REGISTRY)
    assert strategy_names(["setfit", "lora"]) == ["setfit", "lora"]


def test_decoders_gpu_is_the_gpu_config_with_its_records_kept():
    exp = load("decoders-gpu")
    config = Experiment.from_yaml(ROOT / "configs" / "ag_news_llama3_gpu.yaml")
    assert dataclasses.replace(exp, results_dir=config.results_dir) == config
    assert exp.device == "cuda"


def test_the_two_comparisons_ask_for_what_their_tables_show():
    instruct = load("instruct-ft-vs-zero-shot")
    assert set(instruct.strategies) == {"instruct-ft", "zero-shot"} and instruct.seeds == [0, 1]
    few = load("setfit-vs-feature-extract")
    assert set(few.strategies) == {"setfit", "feature-extract"} and few.seeds == [0, 1]
    assert few.per_class == (8, 20, 40)
