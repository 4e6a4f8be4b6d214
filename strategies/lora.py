"""lora: peft LoRA adapters on the attention projections of a sequence-classification model
(decoder or encoder), with its classification head trained in full."""

from __future__ import annotations

from bench.engine.context import RunContext
from bench.engine.kernels import apply_speed_params, load_kwargs
from strategies.common import TrainedStrategy, load_classifier, load_tokenizer
from strategies.peft_common import GPU_DEFAULTS, LoRAParams, add_lora, check_lora_params, lora_search_space, adapter_cost


def frozen_dtype(ctx: RunContext):
    """The frozen base's dtype: bf16 on a CUDA GPU under bf16 autocast (half the memory of fp32, and
    autocast has nothing to cast), fp32 elsewhere (the CPU runs as before). The adapters and the head
    train in fp32 either way (common.keep_trainable_fp32)."""
    import torch

    from bench.engine.device import use_bf16

    if ctx.device.startswith("cuda") and use_bf16(ctx.device, ctx.precision):
        return torch.bfloat16
    return torch.float32


class LoRA(TrainedStrategy):
    name = "lora"
    description = "peft LoRA adapters on the attention projections plus a trained head"
    default_model = "smollm2"
    flops_kind = "adapter"
    in_default_run = True
    Params = LoRAParams
    gpu_defaults = GPU_DEFAULTS

    def search_space(self, trial):
        return lora_search_space(trial)

    def check(self, params: LoRAParams, model) -> None:
        check_lora_params(params, self.name)

    def build(self, ctx: RunContext, p: LoRAParams):
        path = ctx.model_path()
        tokenizer = load_tokenizer(path)
        model = load_classifier(path, ctx, tokenizer, dtype=frozen_dtype(ctx), **load_kwargs(p)).to(ctx.device)
        model = add_lora(model, p, log=ctx.tracker.log)
        return apply_speed_params(model, p, log=ctx.tracker.log), tokenizer

    def extra_cost(self, model) -> dict:
        return adapter_cost(model)
