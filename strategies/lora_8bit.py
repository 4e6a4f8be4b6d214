"""lora-8bit: LoRA on a base whose linear layers are quantized to 8-bit with LLM.int8 (bitsandbytes:
int8 weights with per-row scales, outlier input features above `int8_threshold` kept in 16-bit),
the classification head kept in full precision and trained in full.

bitsandbytes' CPU backend runs LLM.int8 matmuls (checked on this 2-core AVX2 CPU with
bitsandbytes 0.50: forward and backward through Linear8bitLt); on a device where it cannot, the run
fails with one line before the model loads."""

from __future__ import annotations

import contextlib
import importlib.metadata
import logging
from dataclasses import dataclass

from bench.core.errors import BenchError
from bench.core.params import param
from bench.engine.context import RunContext
from bench.engine.kernels import apply_speed_params, load_kwargs
from strategies.common import TrainedStrategy, load_classifier, load_tokenizer
from strategies.peft_common import GPU_DEFAULTS, adapter_cost, add_lora, check_lora_params, lora_search_space
from strategies.qlora import INSTALL, QLoRAParams, head_names_before_loading, prepare_for_training, require_bitsandbytes


@dataclass
class LoRA8bitParams(QLoRAParams):
    """lora's measured CPU defaults (r 16, alpha 32, lr 3e-3, 64 tokens, 1 epoch) and qlora's gradient
    checkpointing, on SmolLM2: the same adapters, only the base's precision differs."""

    int8_threshold: float = param(6.0, ge=0)  # LLM.int8's outlier threshold (0: every feature in int8)


def require_8bit_backend(device: str) -> None:
    """One LLM.int8 layer forward and backward on `device`: a missing backend fails here, in one line,
    instead of deep inside from_pretrained or the first training step."""
    import torch

    try:
        from bench.engine.four_bit import import_bitsandbytes

        bnb = import_bitsandbytes()
        layer = bnb.nn.Linear8bitLt(64, 64, bias=False, has_fp16_weights=False, threshold=6.0)
        layer.weight = bnb.nn.Int8Params(torch.randn(64, 64), requires_grad=False, has_fp16_weights=False)
        layer = layer.to(device)
        x = torch.randn(4, 64, device=device, requires_grad=True)
        with quiet_fp16_cast_warning():
            layer(x).sum().backward()
    except Exception as exc:  # noqa: BLE001 - any failure means: no LLM.int8 on this device
        version = importlib.metadata.version("bitsandbytes")
        raise BenchError(f"bitsandbytes {version} cannot run LLM.int8 matmuls on device '{device}' "
                         f"({type(exc).__name__}: {str(exc)[:120]}); use a CUDA GPU, the strategy lora, "
                         f"or {INSTALL}") from None


@contextlib.contextmanager
def quiet_fp16_cast_warning():
    """Drop bitsandbytes' per-call "inputs will be cast ... to float16" log line while held."""
    logger = logging.getLogger("bitsandbytes.autograd._functions")

    def keep(record: logging.LogRecord) -> bool:
        return "inputs will be cast" not in record.getMessage()

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def load_8bit_classifier(ctx: RunContext, path: str, tokenizer, threshold: float, **kwargs):
    """The sequence-classification model with its linear layers in LLM.int8, the head excepted."""
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold,
                                llm_int8_skip_modules=head_names_before_loading(path, len(ctx.data.labels)))
    return load_classifier(path, ctx, tokenizer, quantization_config=config, device_map={"": ctx.device}, **kwargs)


class LoRA8bit(TrainedStrategy):
    name = "lora-8bit"
    description = "base quantized to 8-bit with LLM.int8 (bitsandbytes) plus LoRA and a trained head"
    default_model = "smollm2"
    flops_kind = "adapter"
    Params = LoRA8bitParams
    gpu_defaults = GPU_DEFAULTS

    def search_space(self, trial):
        return lora_search_space(trial)

    def check(self, params: LoRA8bitParams, model) -> None:
        check_lora_params(params, self.name)
        require_bitsandbytes(self.name, "LLM.int8")

    def build(self, ctx: RunContext, p: LoRA8bitParams):
        require_8bit_backend(ctx.device)
        path = ctx.model_path()
        tokenizer = load_tokenizer(path)
        model = load_8bit_classifier(ctx, path, tokenizer, p.int8_threshold, **load_kwargs(p))
        self.footprint_mb = model.get_memory_footprint() / 2**20  # the quantized base, before adapters
        model = prepare_for_training(model, p.gradient_checkpointing)
        model = add_lora(model, p, log=ctx.tracker.log)
        # bitsandbytes casts each int8 layer's fp32 input to fp16 to quantize it and logs a warning
        # at every call (thousands a run): said once here, dropped while training (`training`)
        ctx.tracker.log("LLM.int8: inputs are quantized through float16 (bitsandbytes)")
        return apply_speed_params(model, p, log=ctx.tracker.log), tokenizer

    def training(self, model, p: LoRA8bitParams):
        return quiet_fp16_cast_warning()

    def extra_cost(self, model) -> dict:
        return {**adapter_cost(model), "quantized_footprint_mb": round(self.footprint_mb, 3)}
