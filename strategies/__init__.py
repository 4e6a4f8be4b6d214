"""Strategy registry: adding a strategy is one module in this folder and one line here. What strategies
share lives in `strategies/shared/`; no strategy module imports another (an import-linter contract)."""

from __future__ import annotations

import importlib

from bench.core.errors import BenchError

# name -> "module:class"; imported only when used, so `bench list` stays fast
REGISTRY = {
    "zero-shot": "strategies.zero_shot:ZeroShot",
    "feature-extract": "strategies.feature_extract:FeatureExtract",
    "full-ft": "strategies.full_ft:FullFineTune",
    "lora": "strategies.lora:LoRA",
    "qlora": "strategies.qlora:QLoRA",
    "dora": "strategies.dora:DoRA",
    "ia3": "strategies.ia3:IA3",
    "prompt-tuning": "strategies.prompt_tuning:PromptTuning",
    "prefix-tuning": "strategies.prefix_tuning:PrefixTuning",
    "adalora": "strategies.adalora:AdaLoRA",
    "vera": "strategies.vera:VeRA",
    "bitfit": "strategies.bitfit:BitFit",
    "lora-8bit": "strategies.lora_8bit:LoRA8bit",
    "instruct-ft": "strategies.instruct_ft:InstructFineTune",
    "setfit": "strategies.setfit:SetFit",
    "tfidf": "strategies.tfidf:Tfidf",
}


def strategy_class(name: str) -> type:
    """The class registered as `name` (its module imported now), or one clear error."""
    if name not in REGISTRY:
        raise BenchError(f"unknown strategy '{name}'; known: {', '.join(sorted(REGISTRY))}")
    module, cls = REGISTRY[name].split(":")
    return getattr(importlib.import_module(module), cls)


def default_run() -> list[str]:
    """The strategies of a plain `bench run`, in registry order (each class's `in_default_run`)."""
    return [name for name in REGISTRY if strategy_class(name).in_default_run]


def strategy_names(names: list[str]) -> list[str]:
    """The names an experiment asks for, each once, in the order given; `all` stands for every
    registered strategy (plug-ins included), so an experiment that means "every strategy" keeps
    meaning it when one is added."""
    out: list[str] = []
    for name in names:
        out += list(REGISTRY) if name == "all" else [name]
    return list(dict.fromkeys(out))


def get_strategy(name: str):
    """An instance of the strategy called `name`, or one clear error listing the known ones."""
    return strategy_class(name)()
