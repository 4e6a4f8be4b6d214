"""Optional fast paths for the trained strategies: the attention implementation, `torch.compile` per
decoder layer, and Liger's fused Triton kernels. Each is a strategy parameter, OFF by default (none
has been measured with the suite on a GPU yet: docs/performance.md), and each is one clear error before any
model loads when it is asked for and cannot run here."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

from bench.core.errors import BenchError, echoed

ATTENTION = ("", "eager", "sdpa", "flash_attention_2")


@dataclass
class SpeedParams:
    """Fields shared by full-ft, lora and qlora (their Params subclass this)."""

    # > 0: training batches of up to this many padded tokens (rows x longest row) instead of
    # batch_size rows: on a GPU the work per step is its tokens, and short rows leave it idle
    max_tokens_per_batch: int = 0
    attn_implementation: str = ""  # "": transformers' default for the model (sdpa where supported)
    compile_layers: bool = False  # torch.compile each decoder/encoder layer (not the whole model)
    liger_kernels: bool = False  # Liger's fused RMSNorm/RoPE/SwiGLU kernels (CUDA, liger-kernel)


def check_speed_params(p, device: str, strategy: str) -> None:
    """One line per knob that cannot work here; runs at plan time, before any model loads."""
    how = f"--param {strategy}.NAME=VALUE or the config file"
    if getattr(p, "max_tokens_per_batch", 0) < 0:
        raise BenchError(f"{strategy}: max_tokens_per_batch must be 0 (batch_size rows) or positive; fix it with {how}")
    if p.max_tokens_per_batch and p.max_tokens_per_batch < p.max_length:
        raise BenchError(f"{strategy}: max_tokens_per_batch {p.max_tokens_per_batch} is below max_length "
                         f"{p.max_length}: a full-length row would not fit; raise it or lower max_length ({how})")
    attn = p.attn_implementation
    if attn not in ATTENTION:
        raise BenchError(f"{strategy}: attn_implementation {echoed(attn)}: use one of "
                         f"{', '.join(a or repr('') for a in ATTENTION)} ({how})")
    cuda = device.startswith("cuda")
    if attn == "flash_attention_2":
        if not cuda:
            raise BenchError(f"{strategy}: attn_implementation=flash_attention_2 needs a CUDA device; "
                             "use sdpa, or --device cuda on a GPU")
        if importlib.util.find_spec("flash_attn") is None:
            raise BenchError(f"{strategy}: attn_implementation=flash_attention_2 needs flash-attn: "
                             "pip install flash-attn --no-build-isolation (or use sdpa)")
    if p.liger_kernels:
        if not cuda:
            raise BenchError(f"{strategy}: liger_kernels needs a CUDA device (Triton kernels); "
                             f"set {strategy}.liger_kernels=false on {device}")
        if importlib.util.find_spec("liger_kernel") is None:
            raise BenchError(f"{strategy}: liger_kernels asked for but liger-kernel is not installed: "
                             "pip install liger-kernel")


def load_kwargs(p) -> dict:
    """from_pretrained arguments the knobs add."""
    return {"attn_implementation": p.attn_implementation} if getattr(p, "attn_implementation", "") else {}


def apply_speed_params(model, p, log=print):
    """Liger kernels and per-layer compilation on a built (and, for lora/qlora, peft-wrapped) model."""
    if getattr(p, "liger_kernels", False):
        from liger_kernel.transformers.monkey_patch import _apply_liger_kernel_to_instance

        # the cross-entropy kernels stay off: the suite computes its own (class-weighted) loss
        _apply_liger_kernel_to_instance(model=base_transformer(model), cross_entropy=False,
                                        fused_linear_cross_entropy=False)
        log("Liger kernels applied (RMSNorm, RoPE, SwiGLU where the architecture has them)")
    if getattr(p, "compile_layers", False):
        layers = repeated_layers(model)
        if layers is None:
            raise BenchError("compile_layers: found no list of repeated layers in this model to compile")
        for layer in layers:
            layer.compile()  # in place; one graph reused by every layer of the same shape
        log(f"torch.compile applied to each of {len(layers)} layers")
    return model


def base_transformer(model):
    """The transformers model under a peft wrapper (or the model itself)."""
    get_base = getattr(model, "get_base_model", None)
    return get_base() if callable(get_base) else model


def repeated_layers(model):
    """The longest torch.nn.ModuleList of the model: the decoder's or encoder's blocks."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m)]
    return max(lists, key=len) if lists else None
