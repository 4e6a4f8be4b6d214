"""Device and numeric precision choices, made once per run."""

from __future__ import annotations

from bench.core import cpuinfo


def cpu_flags() -> frozenset[str]:
    return cpuinfo.read().flags


def cpu_has_bf16() -> bool:
    """bf16 matmuls faster than fp32: AMX tiles. AVX512-BF16 alone is not enough (bf16 autocast was
    slower than fp32 for some model shapes and faster for others on such CPUs, docs/performance.md),
    and on AVX2-only CPUs bf16 is far slower: fp32 keeps results the same across CPUs."""
    return "amx_bf16" in cpu_flags()


DEVICE_FORMS = "auto, cpu, cuda or cuda:N"


def gpu_possible() -> bool:
    """Whether torch could see a CUDA (or ROCm) GPU here, decided without importing torch (seconds
    of the CLI's start-up): on Linux a GPU's driver shows as a device node (NVIDIA's /dev/nvidiactl,
    WSL's /dev/dxg, ROCm's /dev/kfd); elsewhere only torch can say."""
    import os
    import sys

    if not sys.platform.startswith("linux"):
        return True
    return any(os.path.exists(node) for node in ("/dev/nvidiactl", "/dev/nvidia0", "/dev/dxg", "/dev/kfd"))


def resolve_device(requested: str = "auto") -> str:
    """auto, cpu, cuda or cuda:N, checked against what torch sees; anything else is one clear error."""
    import re

    from bench.core.errors import BenchError, echoed

    if not isinstance(requested, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", requested.strip()):
        raise BenchError(f"--device {echoed(requested)} is not supported here; use {DEVICE_FORMS}")
    requested = requested.strip()
    if requested == "cpu" or (requested == "auto" and not gpu_possible()):
        return "cpu"
    import torch

    if requested.startswith("cuda:") and torch.cuda.is_available():
        index = int(requested.split(":")[1])
        if index >= torch.cuda.device_count():
            raise BenchError(f"--device {requested}: torch sees {torch.cuda.device_count()} GPU(s) "
                             f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise BenchError("--device cuda asked for, but torch sees no CUDA GPU; use --device cpu")
    return requested


def use_bf16(device: str, precision: str = "auto") -> bool:
    """bf16 autocast where the device does bf16 fast: CUDA with bf16, CPUs with AMX (see cpu_has_bf16)."""
    if precision == "fp32":
        return False
    if precision == "bf16":
        return True
    if device.startswith("cuda"):
        import torch

        return torch.cuda.is_bf16_supported()
    return cpu_has_bf16()


def autocast(device: str, enabled: bool):
    import torch

    return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu",
                          dtype=torch.bfloat16, enabled=enabled)
