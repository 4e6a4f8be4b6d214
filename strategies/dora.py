"""dora: weight-decomposed LoRA (peft `use_dora`): each adapted weight is split into a magnitude
vector and a direction, the direction updated by LoRA, the magnitude trained directly."""

from __future__ import annotations

from dataclasses import dataclass

from bench.engine.context import RunContext
from bench.engine.training import retuned
from strategies.peft_common import (LoRAParams, check_lora_params, default_target_modules, lora_search_space,
                                    target_module_list)
from strategies.peft_family import PeftMethod


@dataclass
class DoRAParams(LoRAParams):
    """lora's measured CPU defaults (SmolLM2, r 16, alpha 32, lr 3e-3, 64 tokens, 1 epoch), taken over
    unchanged: DoRA's paper uses LoRA's settings. Not swept for DoRA itself (peft_family.SWEEPS):
    on the default split it matches lora (0.940 at seed 0)."""

    lr: float = retuned("lr", 3e-3)


class DoRA(PeftMethod):
    name = "dora"
    description = "weight-decomposed LoRA (DoRA): LoRA on the direction plus a trained magnitude, and a trained head"
    default_model = "smollm2"
    Params = DoRAParams

    def search_space(self, trial):
        return lora_search_space(trial)

    def check(self, params: DoRAParams, model) -> None:
        check_lora_params(params, self.name)

    def peft_config(self, ctx: RunContext, p: DoRAParams, model):
        from peft import LoraConfig, TaskType

        return LoraConfig(task_type=TaskType.SEQ_CLS, r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout,
                          target_modules=target_module_list(p.target_modules) or default_target_modules(model),
                          use_dora=True, bias="none")
