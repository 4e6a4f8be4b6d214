"""lora: peft LoRA adapters on the attention projections of a sequence-classification model (decoder
or encoder), with its classification head trained in full."""

from __future__ import annotations

from strategies.shared.lora_adapters import LoRAMethod


class LoRA(LoRAMethod):
    name = "lora"
    description = "peft LoRA adapters on the attention projections plus a trained head"
    in_default_run = True
    base = "full"
