"""lora: peft LoRA adapters on the attention projections of a sequence-classification model
(decoder or encoder), with its classification head trained in full."""

from __future__ import annotations

from bench.context import RunContext
from strategies.base import Strategy, StrategyResult
from strategies.common import load_classifier, load_tokenizer
from strategies.peft_common import LoRAParams, add_lora, check_lora_params, lora_search_space, train_and_evaluate


class LoRA(Strategy):
    name = "lora"
    description = "peft LoRA adapters on the attention projections plus a trained head"
    default_model = "smollm2"
    Params = LoRAParams

    def search_space(self, trial):
        return lora_search_space(trial)

    def check(self, params: LoRAParams, model) -> None:
        check_lora_params(params, self.name)

    def run(self, ctx: RunContext, p: LoRAParams) -> StrategyResult:
        with ctx.tracker.phase("load"):
            path = ctx.model_path()
            tokenizer = load_tokenizer(path)
            model = load_classifier(path, ctx, tokenizer).to(ctx.device)
            model = add_lora(model, p, log=ctx.tracker.log)
        return train_and_evaluate(ctx, p, model, tokenizer)
