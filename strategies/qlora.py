"""qlora: the base model quantized to 4-bit NF4 with double quantization (bitsandbytes), LoRA
adapters on top, the classification head kept in full precision and trained in full.

bitsandbytes >= 0.47 runs 4-bit NF4 on CPU as well as on CUDA, so this strategy runs on either."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from dataclasses import dataclass

from bench.core.errors import BenchError
from bench.engine.compat import enable_activation_checkpointing, peft_calls
from bench.engine.context import RunContext
from bench.engine.four_bit import (REPACKING_OFF_NOTE, has_4bit_matmul_op, import_bitsandbytes, keep_4bit_layers_trainable,
                                   keep_4bit_outputs)
from bench.engine.kernels import apply_speed_params, load_kwargs
from strategies.common import TrainedStrategy, load_classifier, load_tokenizer
from strategies.peft_common import (GPU_DEFAULTS, LoRAParams, add_lora, check_lora_params, classifier_head_names,
                                    lora_search_space, adapter_cost)

MIN_BITSANDBYTES = "0.47"  # the first release with a CPU backend for 4-bit NF4
INSTALL = f"pip install -U 'bitsandbytes>={MIN_BITSANDBYTES}' accelerate"


@dataclass
class QLoRAParams(LoRAParams):
    # Recompute activations in the backward pass instead of keeping them (QLoRA's usual setting,
    # as peft's prepare_model_for_kbit_training defaults to). Without it the 4-bit base saves
    # nothing on the CPU: measured on SmolLM2, 64 tokens, batch 8, the qlora run peaked at 2,844 MB
    # RSS against lora's 2,523 MB (the backward keeps de-quantized weights and all activations);
    # recomputing everything, 1,787 MB against 2,567 MB, for ~1.45x the training time. The 4-bit
    # matmuls' outputs are kept, not recomputed (four_bit.keep_4bit_outputs): the same gradients,
    # bit for bit, for the memory of those outputs (every layer's linear outputs, until its backward).
    gradient_checkpointing: bool = True


class QLoRA(TrainedStrategy):
    name = "qlora"
    description = "base quantized to 4-bit NF4 (double quantization, bitsandbytes) plus LoRA and a trained head"
    default_model = "smollm2"
    flops_kind = "adapter"
    in_default_run = True
    Params = QLoRAParams
    gpu_defaults = GPU_DEFAULTS

    def search_space(self, trial):
        return lora_search_space(trial)

    def check(self, params: QLoRAParams, model) -> None:
        check_lora_params(params, self.name)
        require_bitsandbytes()

    def build(self, ctx: RunContext, p: QLoRAParams):
        require_4bit_backend(ctx.device)
        path = ctx.model_path()
        tokenizer = load_tokenizer(path)
        model = load_4bit_classifier(ctx, path, tokenizer, **load_kwargs(p))
        self.footprint_mb = model.get_memory_footprint() / 2**20  # the quantized base, before adapters
        model = prepare_for_training(model, p.gradient_checkpointing)
        model = add_lora(model, p, log=ctx.tracker.log)
        return apply_speed_params(model, p, log=ctx.tracker.log), tokenizer

    def extra_cost(self, model) -> dict:
        return {**adapter_cost(model), "quantized_footprint_mb": round(self.footprint_mb, 3)}


def require_bitsandbytes(strategy: str = "qlora", what: str = "4-bit NF4") -> None:
    """Cheap, import-free checks that k-bit loading can work at all (runs before any model loads)."""
    from packaging.version import Version

    try:
        if importlib.util.find_spec("bitsandbytes") is None:
            raise importlib.metadata.PackageNotFoundError("bitsandbytes")
        version = importlib.metadata.version("bitsandbytes")
    except (importlib.metadata.PackageNotFoundError, ValueError):
        raise BenchError(f"{strategy} needs bitsandbytes for {what} and it is not installed: {INSTALL}") from None
    if Version(version) < Version(MIN_BITSANDBYTES):
        raise BenchError(f"{strategy} needs bitsandbytes>={MIN_BITSANDBYTES} ({what} on CPU and CUDA); "
                         f"found {version}: {INSTALL}")
    if importlib.util.find_spec("accelerate") is None:
        raise BenchError(f"{strategy} needs accelerate to load {what} models (transformers requires it): {INSTALL}")


def require_4bit_backend(device: str) -> None:
    """Quantize and restore a tiny tensor on `device`: a missing backend fails here, in one line,
    instead of deep inside from_pretrained."""
    import torch

    try:
        bnbf = import_bitsandbytes().functional
        packed, state = bnbf.quantize_4bit(torch.ones(64, 64, device=device), quant_type="nf4",
                                           compress_statistics=True)
        bnbf.dequantize_4bit(packed, state)
    except Exception as exc:  # noqa: BLE001 - any failure means: no 4-bit on this device
        version = importlib.metadata.version("bitsandbytes")
        raise BenchError(f"bitsandbytes {version} cannot do 4-bit NF4 on device '{device}' "
                         f"({type(exc).__name__}: {str(exc)[:120]}); use a CUDA GPU or {INSTALL}") from None


def load_4bit_classifier(ctx: RunContext, path: str, tokenizer, **kwargs):
    """The sequence-classification model with its linear layers in 4-bit NF4, the head excepted."""
    config = nf4_config(ctx, head_names_before_loading(path, len(ctx.data.labels)))
    # fp32 for what is not 4-bit (peft's k-bit recipe casts it to fp32 anyway), straight onto the
    # device: transformers 5 streams the checkpoint tensor by tensor, so the host holds no full copy
    model = load_classifier(path, ctx, tokenizer, quantization_config=config, device_map={"": ctx.device}, **kwargs)
    if keep_4bit_layers_trainable(model):  # only on CPUs with AVX512-BF16, where it would have repacked
        ctx.tracker.log(REPACKING_OFF_NOTE)
    return model


def head_names_before_loading(path: str, n_labels: int) -> list[str]:
    """The head's module names, from a weightless (meta-device) copy of the model: they must be
    known before loading, to keep the head out of 4-bit (`score` on Llama, `classifier` on BERT)."""
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = AutoConfig.from_pretrained(path, num_labels=n_labels)
    with torch.device("meta"):
        skeleton = AutoModelForSequenceClassification.from_config(config)
    return classifier_head_names(skeleton)


def nf4_config(ctx: RunContext, keep_full_precision: list[str]):
    """The seed's quantization: NF4, double quantization, bf16 compute where the device has it."""
    import torch
    from transformers import BitsAndBytesConfig

    from bench.engine.device import use_bf16

    compute = torch.bfloat16 if use_bf16(ctx.device, ctx.precision) else torch.float32
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute, llm_int8_skip_modules=keep_full_precision)


def prepare_for_training(model, gradient_checkpointing: bool):
    """peft's k-bit preparation: freeze the base, cast its non-4-bit weights to fp32 and, when asked,
    turn on gradient checkpointing (non-reentrant: no need to make the inputs require grad) that
    keeps the 4-bit matmuls' outputs (four_bit.keep_4bit_outputs; 8-bit layers recompute all)."""
    from peft import prepare_model_for_kbit_training

    with peft_calls():
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if gradient_checkpointing:
        enable_activation_checkpointing(model, context_fn=keep_4bit_outputs if has_4bit_matmul_op() else None)
    return model
