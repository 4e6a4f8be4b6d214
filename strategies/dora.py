"""dora: weight-decomposed LoRA (peft `use_dora`): each adapted weight is split into a magnitude
vector and a direction, the direction updated by LoRA, the magnitude trained directly."""

from __future__ import annotations

from bench.engine.context import RunContext
from strategies.shared.lora_adapters import LoRAMethod, LoRAParams, lora_config


class DoRA(LoRAMethod):
    """lora's CPU defaults, taken over unchanged: DoRA's paper uses LoRA's settings."""

    name = "dora"
    description = "weight-decomposed LoRA (DoRA): LoRA on the direction plus a trained magnitude, and a trained head"
    base = "full"

    def peft_config(self, ctx: RunContext, p: LoRAParams, model):
        return lora_config(p, model, use_dora=True)
