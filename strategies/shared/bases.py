"""The frozen bases an adapter sits on: the model in full precision, its linear layers in 4-bit NF4
(QLoRA's base), or in 8-bit LLM.int8 (bitsandbytes, CUDA or CPU backend). `load_base(kind, ctx, p)`
is the one way to load any of them; the classification head is never quantized and trains in full.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import logging
from dataclasses import dataclass, field

from bench.core.errors import BenchError
from bench.engine.compat import enable_activation_checkpointing, peft_calls
from bench.engine.context import RunContext
from bench.engine.four_bit import (REPACKING_OFF_NOTE, has_4bit_matmul_op, import_bitsandbytes, keep_4bit_layers_trainable,
                                   keep_4bit_outputs)
from bench.engine.kernels import load_kwargs
from strategies.shared.trained import classifier_head_names, load_classifier, load_tokenizer

MIN_BITSANDBYTES = "0.47"  # the first release with a CPU backend for 4-bit NF4
INSTALL = f"pip install -U 'bitsandbytes>={MIN_BITSANDBYTES}' accelerate"

# kind -> what the base's linear layers hold, as errors name it
BASES = {"full": "full precision", "4bit": "4-bit NF4", "8bit": "LLM.int8"}


@dataclass
class Base:
    """A loaded base, ready for an adapter: the model, its tokenizer, and what loading it measured."""

    model: object
    tokenizer: object
    cost: dict = field(default_factory=dict)  # e.g. the quantized footprint, for the record's cost


def load_base(kind: str, ctx: RunContext, p) -> Base:
    """The sequence-classification model (fresh head) as base `kind` (a key of BASES), frozen layers
    in the run's dtype; a k-bit base is prepared for training (peft's k-bit recipe) and, where the
    params ask for it, checkpoints its activations."""
    path = ctx.model_path()
    tokenizer = load_tokenizer(path)
    if kind == "full":
        model = load_classifier(path, ctx, tokenizer, dtype=frozen_dtype(ctx), **load_kwargs(p)).to(ctx.device)
        return Base(model, tokenizer)
    if kind == "4bit":
        require_4bit_backend(ctx.device)
        model = load_4bit_classifier(ctx, path, tokenizer, **load_kwargs(p))
    elif kind == "8bit":
        require_8bit_backend(ctx.device)
        model = load_8bit_classifier(ctx, path, tokenizer, p.int8_threshold, **load_kwargs(p))
        # bitsandbytes casts each int8 layer's fp32 input to fp16 to quantize it and logs a warning at
        # every call (thousands a run): said once here, dropped while training (quiet_fp16_cast_warning)
        ctx.tracker.log("LLM.int8: inputs are quantized through float16 (bitsandbytes)")
    else:
        raise ValueError(f"unknown base kind {kind!r}; known: {', '.join(BASES)}")
    footprint_mb = model.get_memory_footprint() / 2**20  # the quantized base, before any adapter
    model = prepare_for_training(model, p.gradient_checkpointing)
    return Base(model, tokenizer, {"quantized_footprint_mb": round(footprint_mb, 3)})


def frozen_dtype(ctx: RunContext):
    """The frozen base's dtype: bf16 on a CUDA GPU under bf16 autocast (half the memory of fp32, and
    autocast has nothing to cast), fp32 elsewhere. What trains is fp32 either way
    (trained.keep_trainable_fp32)."""
    import torch

    from bench.engine.device import use_bf16

    if ctx.device.startswith("cuda") and use_bf16(ctx.device, ctx.precision):
        return torch.bfloat16
    return torch.float32


# ---------------------------------------------------------------- checks before any model loads


def require_bitsandbytes(strategy: str, kind: str) -> None:
    """Cheap, import-free checks that k-bit loading can work at all."""
    from packaging.version import Version

    what = BASES[kind]
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


def require_8bit_backend(device: str) -> None:
    """One LLM.int8 layer forward and backward on `device`: a missing backend fails here, in one line,
    instead of deep inside from_pretrained or the first training step."""
    import torch

    try:
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


# ---------------------------------------------------------------- loading


def load_4bit_classifier(ctx: RunContext, path: str, tokenizer, **kwargs):
    """The sequence-classification model with its linear layers in 4-bit NF4, the head excepted."""
    config = nf4_config(ctx, head_names_before_loading(path, len(ctx.data.labels)))
    # fp32 for what is not 4-bit (peft's k-bit recipe casts it to fp32 anyway), straight onto the
    # device: transformers 5 streams the checkpoint tensor by tensor, so the host holds no full copy
    model = load_classifier(path, ctx, tokenizer, quantization_config=config, device_map={"": ctx.device}, **kwargs)
    if keep_4bit_layers_trainable(model):  # only on CPUs with AVX512-BF16, where it would have repacked
        ctx.tracker.log(REPACKING_OFF_NOTE)
    return model


def load_8bit_classifier(ctx: RunContext, path: str, tokenizer, threshold: float, **kwargs):
    """The sequence-classification model with its linear layers in LLM.int8, the head excepted."""
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold,
                                llm_int8_skip_modules=head_names_before_loading(path, len(ctx.data.labels)))
    return load_classifier(path, ctx, tokenizer, quantization_config=config, device_map={"": ctx.device}, **kwargs)


def head_names_before_loading(path: str, n_labels: int) -> list[str]:
    """The head's module names, from a weightless (meta-device) copy of the model: they must be
    known before loading, to keep the head out of k-bit (`score` on Llama, `classifier` on BERT)."""
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
    """peft's k-bit preparation: freeze the base, cast its non-k-bit weights to fp32 and, when asked,
    turn on gradient checkpointing (non-reentrant: no need to make the inputs require grad) that
    keeps the 4-bit matmuls' outputs (four_bit.keep_4bit_outputs; 8-bit layers recompute all)."""
    from peft import prepare_model_for_kbit_training

    with peft_calls():
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if gradient_checkpointing:
        enable_activation_checkpointing(model, context_fn=keep_4bit_outputs if has_4bit_matmul_op() else None)
    return model


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
