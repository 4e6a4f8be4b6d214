"""prompt-tuning: trained soft-prompt vectors prepended to the input embeddings of a frozen model
(peft PromptTuning, Lester et al. 2021), plus a trained head."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from bench.core.params import param
from bench.engine.context import RunContext
from bench.engine.training import retuned
from strategies.shared.adapters import AdapterStrategy, AdapterTrainParams, training_search_space
from strategies.shared.soft_prompts import left_pad_prompted_rows, not_the_inputs_embeds_notice
from strategies.shared.model_checks import require_forward_argument


@dataclass
class PromptTuningParams(AdapterTrainParams):
    """16 virtual tokens at lr 1e-2: soft prompts need lrs far above LoRA's (the learning-rate sweep in
    experiments/, docs/strategies.md; at 1e-1 the head, trained at the same lr, diverges). The soft prompt is initialized from `init_text`'s token embeddings
    (empty: random), which the prompt-tuning paper found steadier than random vectors on small models."""

    lr: float = retuned("lr", 1e-2)
    num_virtual_tokens: int = param(16, ge=1)
    init_text: str = "Classify the topic of this text:"


class PromptTuning(AdapterStrategy):
    name = "prompt-tuning"
    description = "trained soft-prompt vectors prepended to the input of a frozen model, plus a trained head"
    default_model = "smollm2"
    Params = PromptTuningParams

    def search_space(self, trial):
        return {**training_search_space(trial, 1e-3, 1e-1),
                "num_virtual_tokens": trial.suggest_categorical("num_virtual_tokens", [8, 16, 32])}

    def check(self, params: PromptTuningParams, model) -> None:
        require_forward_argument(model, ("inputs_embeds",), self.name, "the soft prompt is fed as input embeddings")

    def peft_config(self, ctx: RunContext, p: PromptTuningParams, model):
        from peft import PromptTuningConfig, PromptTuningInit, TaskType

        if ctx.model.architecture != "encoder" and hasattr(model, "score"):  # last-token classifier
            model.register_forward_pre_hook(left_pad_prompted_rows, with_kwargs=True)
            # transformers warns that it cannot find padding in input embeddings: the hook moved it
            logging.getLogger("transformers.modeling_layers").addFilter(not_the_inputs_embeds_notice)
        init = dict(prompt_tuning_init=PromptTuningInit.TEXT, prompt_tuning_init_text=p.init_text,
                    tokenizer_name_or_path=ctx.model_path()) if p.init_text.strip() else {}
        return PromptTuningConfig(task_type=TaskType.SEQ_CLS, num_virtual_tokens=p.num_virtual_tokens, **init)
