"""prefix-tuning: trained key/value vectors prepended in every attention layer of a frozen model
(peft PrefixTuning, Li & Liang 2021), plus a trained head."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.params import param
from bench.engine.compat import CACHE_ARGUMENTS
from bench.engine.context import RunContext
from bench.engine.training import retuned
from strategies.shared.adapters import AdapterStrategy, AdapterTrainParams, training_search_space
from strategies.shared.model_checks import require_forward_argument


@dataclass
class PrefixTuningParams(AdapterTrainParams):
    """16 virtual tokens at lr 1e-2 for 3 epochs: one epoch leaves the prefixes near where they started
    (the sweep in experiments/, docs/strategies.md).
    `prefix_projection` trains the prefix through a 2-layer MLP (the paper's
    reparametrization: steadier, but many more trainable weights)."""

    lr: float = retuned("lr", 1e-2)
    epochs: int = retuned("epochs", 3)
    num_virtual_tokens: int = param(16, ge=1)
    prefix_projection: bool = False


class PrefixTuning(AdapterStrategy):
    name = "prefix-tuning"
    description = "trained key/value prefixes in every attention layer of a frozen model, plus a trained head"
    default_model = "smollm2"
    Params = PrefixTuningParams

    def search_space(self, trial):
        return {**training_search_space(trial, 1e-3, 1e-1),
                "num_virtual_tokens": trial.suggest_categorical("num_virtual_tokens", [8, 16, 32])}

    def check(self, params: PrefixTuningParams, model) -> None:
        require_forward_argument(model, CACHE_ARGUMENTS, self.name,
                                 "the prefixes are fed as past keys and values")

    def peft_config(self, ctx: RunContext, p: PrefixTuningParams, model):
        from peft import PrefixTuningConfig, TaskType

        return PrefixTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=p.num_virtual_tokens,
                                  prefix_projection=p.prefix_projection)
