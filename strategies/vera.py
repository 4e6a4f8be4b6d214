"""vera: vector-based random matrix adaptation (peft VeRA, Kopiczko et al. 2024): one pair of frozen
random low-rank matrices shared by every adapted layer, with only two scaling vectors per layer
trained, plus a trained head."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.params import param
from bench.engine.context import RunContext
from bench.engine.training import retuned
from strategies.shared.adapters import (
    AdapterStrategy,
    AdapterTrainParams,
    default_target_modules,
    target_module_list,
    training_search_space,
)


@dataclass
class VeRAParams(AdapterTrainParams):
    """VeRA's shared projections are frozen and random, so its rank is high (peft's default 256) and
    its lr is far above LoRA's (the learning-rate sweep in experiments/, docs/strategies.md). The random
    projections are drawn from the run's seed and saved
    with the adapter."""

    lr: float = retuned("lr", 1e-2)
    r: int = param(256, ge=1)
    dropout: float = param(0.0, ge=0, lt=1)
    d_initial: float = param(0.1, gt=0)
    target_modules: list[str] | None = None  # None: the model's attention projections


class VeRA(AdapterStrategy):
    name = "vera"
    description = "VeRA: shared frozen random low-rank matrices, two trained scaling vectors per layer, plus a trained head"
    default_model = "smollm2"
    Params = VeRAParams

    def search_space(self, trial):
        return {**training_search_space(trial, 1e-3, 1e-1),
                "r": trial.suggest_categorical("r", [64, 128, 256, 512])}

    def check(self, params: VeRAParams, model) -> None:
        target_module_list(params.target_modules)

    def peft_config(self, ctx: RunContext, p: VeRAParams, model):
        from peft import TaskType, VeraConfig

        return VeraConfig(task_type=TaskType.SEQ_CLS, r=p.r, vera_dropout=p.dropout, d_initial=p.d_initial,
                          projection_prng_key=ctx.seed, save_projection=True,
                          target_modules=target_module_list(p.target_modules) or default_target_modules(model))
