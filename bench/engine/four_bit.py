"""bitsandbytes as the 4-bit strategies use it: imported without its hub-kernel notice, and with its
CPU inference repacking turned off so that gradients keep flowing through 4-bit layers.

What bitsandbytes 0.50 does on a CPU with AVX512-BF16 (bitsandbytes/backends/cpu/ops.py,
nn/modules.py, autograd/_functions.py):
- on import it tries `kernels.get_kernel("kernels-community/quantization-bitsandbytes")`, a fused
  bf16 `gemm_4bit_forward` for its packed-weight *inference* path, and logs "Failed to load CPU
  gemm_4bit_forward from kernels-community ... pip install kernels" where that fails. The kernel is
  downloaded from the Hugging Face Hub at run time (`pip install kernels` brings only the loader; here,
  offline, it ends in a ConnectError), and it is never used by training.
- the first forward pass of a Linear4bit in eval mode without gradients (our untrained-baseline
  evaluation) repacks its weight into that inference layout, and from then on every call, training
  included, goes through `bitsandbytes::gemv_4bit`, which has no autograd formula: PyTorch warns
  "an autograd kernel was not registered", the layer's input gets no gradient, so adapters before it
  get wrong gradients (cosine 0.69-0.97 against a de-quantized copy on a tiny Llama), and the
  forward runs in bf16. `keep_4bit_layers_trainable` turns the repacking off; the de-quantize-and-
  matmul path it leaves has an autograd formula (tests/unit/engine/test_four_bit.py checks the gradients).
"""

from __future__ import annotations

import logging
import sys
import warnings

KERNEL_NOTICE_LOGGER = "bitsandbytes.backends.cpu.ops"
KERNEL_NOTICE_START = "Failed to load CPU gemm_4bit_forward from kernels-community"
REPACKING_OFF_NOTE = ("4-bit layers: bitsandbytes' packed bf16 CPU inference path is off (after an evaluation it "
                      "passes no gradient to earlier layers); de-quantized fp32 matmuls throughout")


def _not_the_kernel_notice(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(KERNEL_NOTICE_START)


def silence_kernel_notice() -> None:
    """Drop bitsandbytes' notice about a hub-only kernel that nothing here would use (see the module
    docstring), and only that message. Harmless where bitsandbytes is not installed."""
    notice_logger = logging.getLogger(KERNEL_NOTICE_LOGGER)  # the logger bitsandbytes will get by name
    if _not_the_kernel_notice not in notice_logger.filters:
        notice_logger.addFilter(_not_the_kernel_notice)


def import_bitsandbytes():
    """bitsandbytes, imported without its kernel notice; None where it is not installed. Call it
    before anything that imports bitsandbytes on its own (peft does on its import). Its import runs
    `torch.compile`, whose first call imports torch's own compiler, which uses torch's deprecated
    `torch.jit.script_method` (torch/utils/mkldnn.py): that notice, torch's about itself, is dropped
    here and only here."""
    silence_kernel_notice()
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit\._script",
                                message=r".*torch\.jit\.script_method")
        try:
            import bitsandbytes
        except ImportError:
            return None
    return bitsandbytes


def hide_bitsandbytes() -> bool:
    """Make bitsandbytes look uninstalled to this process, for a run that quantizes nothing: peft and
    transformers import it wherever `importlib.util.find_spec` finds it, and that import is about
    2.5 s of every adapter run's start-up on a 2-core CPU (`import torch; import peft`). A None entry
    in sys.modules is Python's own "not importable": `import` raises ModuleNotFoundError and find_spec
    returns None, so both libraries take their no-bitsandbytes path. Where something imported it
    already, nothing changes; returns whether it is hidden."""
    sys.modules.setdefault("bitsandbytes", None)
    return sys.modules["bitsandbytes"] is None


def keep_4bit_layers_trainable(model) -> int:
    """Turn off bitsandbytes' CPU inference repacking on every 4-bit layer; returns how many layers
    would have repacked (0 off AVX512-BF16 CPUs and on CUDA, where it never happens)."""
    bnb = import_bitsandbytes()
    changed = 0
    for module in model.modules():
        if isinstance(module, bnb.nn.Linear4bit) and getattr(module, "support_avx512bf16_for_cpu", False):
            module.support_avx512bf16_for_cpu = False
            changed += 1
    return changed


def keep_4bit_outputs():
    """Selective activation checkpointing for 4-bit layers: the contexts (torch.utils.checkpoint's
    `context_fn`) that keep each 4-bit matmul's output from the forward pass and recompute only the
    rest of a checkpointed layer in the backward pass. The recomputation then no longer
    de-quantizes and multiplies every 4-bit weight a second time; its results are bit for bit those
    of recomputing everything, for the memory those outputs take (every checkpointed layer's linear
    outputs, each kept until its layer's backward pass)."""
    import torch
    from torch.utils.checkpoint import CheckpointPolicy, create_selective_checkpoint_contexts

    keep = {torch.ops.bitsandbytes.gemm_4bit.default}

    def policy(ctx, op, *args, **kwargs):
        return CheckpointPolicy.MUST_SAVE if op in keep else CheckpointPolicy.PREFER_RECOMPUTE

    return create_selective_checkpoint_contexts(policy)


def has_4bit_matmul_op() -> bool:
    """Whether bitsandbytes runs its 4-bit matmul as a torch op (>= 0.47), which selective
    checkpointing can tell apart."""
    import torch

    bnb = import_bitsandbytes()
    return bnb is not None and hasattr(torch.ops.bitsandbytes, "gemm_4bit")
