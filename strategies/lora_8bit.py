"""lora-8bit: LoRA on a base whose linear layers are quantized to 8-bit with LLM.int8 (bitsandbytes:
int8 weights with per-row scales, outlier input features above `int8_threshold` kept in 16-bit), the
classification head kept in full precision and trained in full. bitsandbytes' CPU backend runs LLM.int8
matmuls forward and backward; on a device where it cannot, the run fails with one line before the model
loads."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.params import param
from strategies.shared.bases import quiet_fp16_cast_warning
from strategies.shared.lora_adapters import LoRAMethod, QuantizedLoRAParams


@dataclass
class LoRA8bitParams(QuantizedLoRAParams):
    """lora's CPU defaults and qlora's gradient checkpointing: the same adapters, only the base's
    precision differs."""

    int8_threshold: float = param(6.0, ge=0)  # LLM.int8's outlier threshold (0: every feature in int8)


class LoRA8bit(LoRAMethod):
    name = "lora-8bit"
    description = "base quantized to 8-bit with LLM.int8 (bitsandbytes) plus LoRA and a trained head"
    base = "8bit"
    Params = LoRA8bitParams

    def training(self, model, p: LoRA8bitParams):
        return quiet_fp16_cast_warning()
