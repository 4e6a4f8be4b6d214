"""ia3: (IA)^3, learned vectors that rescale the keys, values and feed-forward activations of a
frozen model (peft IA3), plus a trained head: the fewest trainable weights of the adapter methods."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.errors import BenchError
from bench.engine.context import RunContext
from bench.engine.training import retuned
from strategies.shared.adapters import AdapterStrategy, AdapterTrainParams, target_module_list, training_search_space


@dataclass
class IA3Params(AdapterTrainParams):
    """(IA)^3 rescales activations starting from 1, so it needs a far higher lr than LoRA (its default
    comes from the learning-rate sweep in experiments/, docs/strategies.md)."""

    lr: float = retuned("lr", 2e-2)
    # None: peft's defaults for the model_type (Llama: k_proj, v_proj, down_proj; BERT: key, value,
    # output.dense), the feed-forward ones scaled on their input
    target_modules: list[str] | None = None
    feedforward_modules: list[str] | None = None


class IA3(AdapterStrategy):
    name = "ia3"
    description = "(IA)^3: learned rescaling of keys, values and feed-forward activations, plus a trained head"
    default_model = "smollm2"
    Params = IA3Params

    def search_space(self, trial):
        return training_search_space(trial, 3e-3, 1e-1)

    def check(self, params: IA3Params, model) -> None:
        targets = target_module_list(params.target_modules)
        feedforward = target_module_list(params.feedforward_modules)
        if feedforward and not targets:
            raise BenchError("ia3: feedforward_modules needs target_modules too (a superset of them); "
                             "set --param ia3.target_modules=... or leave both unset")
        if feedforward and not set(feedforward) <= set(targets):
            raise BenchError(f"ia3: feedforward_modules {feedforward} must be among target_modules {targets}")

    def peft_config(self, ctx: RunContext, p: IA3Params, model):
        from peft import IA3Config, TaskType

        return IA3Config(task_type=TaskType.SEQ_CLS, target_modules=target_module_list(p.target_modules),
                         feedforward_modules=target_module_list(p.feedforward_modules))
