"""qlora: the base model quantized to 4-bit NF4 with double quantization (bitsandbytes), LoRA adapters
on top, the classification head kept in full precision and trained in full. bitsandbytes runs 4-bit
NF4 on CPU as well as on CUDA, so this strategy runs on either."""

from __future__ import annotations

from strategies.shared.lora_adapters import LoRAMethod, QuantizedLoRAParams


class QLoRA(LoRAMethod):
    name = "qlora"
    description = "base quantized to 4-bit NF4 (double quantization, bitsandbytes) plus LoRA and a trained head"
    in_default_run = True
    base = "4bit"
    Params = QuantizedLoRAParams
