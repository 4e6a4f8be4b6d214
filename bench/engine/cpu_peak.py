"""A CPU's peak FLOP/s per core and cycle, the figure under every CPU MFU: modelled from the
microarchitecture, or measured with a large matmul.

Modelled: FMA units x 2 FLOPs x fp32 lanes per unit. The ISA alone does not say how wide the units
are: AMD's Zen 4 runs AVX-512 on two 256-bit units (half the FLOPs per cycle of a CPU with two
512-bit units, as Intel's Xeons since Skylake-SP have), while Zen 5's server and desktop parts
have full 512-bit units and its mobile parts 256-bit ones; Intel's client AVX-512 parts (Ice Lake,
Tiger Lake, Rocket Lake) have one 512-bit FMA unit. MICROARCHITECTURES names them by /proc/cpuinfo's
vendor, family and model (AMD's and Intel's optimization manuals); a CPU not in it gets the widest
SIMD its flags name with two full-width FMA units, and its basis says that this was assumed.

Measured (`FTBENCH_PEAK=measured`): the best of a few n x n matmuls in the run's dtype on the run's
threads, timed once per CPU, thread count and dtype and cached under the cache folder. It is the
rate dense matmuls really reach here, below any modelled peak (clocks under load, memory).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from bench.core.cpuinfo import CpuInfo

MEASURE_N = 2048  # the matmul's side: large enough to run at the matmul kernel's full rate
MEASURE_REPEATS = 5


@dataclass(frozen=True)
class Microarchitecture:
    name: str
    vendor: str
    family: int
    models: tuple[range, ...]
    fma_units: int  # FMA pipes per core
    fma_bits: int  # the width of each


def _models(*spans: tuple[int, int]) -> tuple[range, ...]:
    return tuple(range(lo, hi + 1) for lo, hi in spans)


AMD, INTEL, HYGON = "AuthenticAMD", "GenuineIntel", "HygonGenuine"
MICROARCHITECTURES = (
    Microarchitecture("AMD Zen / Zen+", AMD, 0x17, _models((0x00, 0x2F)), 2, 128),
    Microarchitecture("AMD Zen 2", AMD, 0x17, _models((0x30, 0xFF)), 2, 256),
    Microarchitecture("Hygon Dhyana (Zen)", HYGON, 0x18, _models((0x00, 0xFF)), 2, 128),
    Microarchitecture("AMD Zen 3", AMD, 0x19, _models((0x00, 0x0F), (0x20, 0x5F)), 2, 256),
    Microarchitecture("AMD Zen 4 (AVX-512 on 256-bit units)", AMD, 0x19,
                      _models((0x10, 0x1F), (0x60, 0x7F), (0xA0, 0xAF)), 2, 256),
    Microarchitecture("AMD Zen 5 (server, desktop: 512-bit units)", AMD, 0x1A, _models((0x00, 0x1F), (0x40, 0x4F)),
                      2, 512),
    Microarchitecture("AMD Zen 5 (mobile: 256-bit units)", AMD, 0x1A, _models((0x20, 0x2F)), 2, 256),
    # Xeon Scalable: two 512-bit FMA units (some Bronze, Silver and Gold 5xxx Skylake/Cascade Lake
    # parts have one; the model number does not tell them apart)
    Microarchitecture("Intel Skylake-SP / Cascade Lake / Cooper Lake", INTEL, 6, _models((0x55, 0x55)), 2, 512),
    Microarchitecture("Intel Ice Lake-SP", INTEL, 6, _models((0x6A, 0x6A), (0x6C, 0x6C)), 2, 512),
    Microarchitecture("Intel Sapphire / Emerald / Granite Rapids", INTEL, 6,
                      _models((0x8F, 0x8F), (0xCF, 0xCF), (0xAD, 0xAE)), 2, 512),
    Microarchitecture("Intel client AVX-512 (Cannon / Ice / Tiger / Rocket Lake)", INTEL, 6,
                      _models((0x66, 0x66), (0x7D, 0x7E), (0x8C, 0x8D), (0xA7, 0xA7)), 1, 512),
)


def microarchitecture(info: CpuInfo) -> Microarchitecture | None:
    for arch in MICROARCHITECTURES:
        if (info.vendor, info.family) == (arch.vendor, arch.family) and info.model is not None \
                and any(info.model in span for span in arch.models):
            return arch
    return None


def simd(flags: frozenset[str]) -> tuple[int, str]:
    """(widest fp32 vector in bits, its name) from the flags."""
    if "avx512f" in flags:
        return 512, "AVX-512"
    if "avx2" in flags or "avx" in flags:
        return 256, "AVX2" if "avx2" in flags else "AVX"
    return 128, "128-bit SIMD"


def fp32_flops_per_cycle(info: CpuInfo) -> tuple[int, str]:
    """(fp32 FLOPs per cycle per core, how that was derived)."""
    bits, isa = simd(info.flags)
    arch = microarchitecture(info)
    if arch is not None:
        width = min(bits, arch.fma_bits)
        per_cycle = arch.fma_units * 2 * (width // 32)
        return per_cycle, (f"fp32 {isa} on {arch.name}: {arch.fma_units} x {arch.fma_bits}-bit FMA units = "
                           f"{per_cycle} FLOPs/cycle/core")
    fma = "fma" in info.flags or "asimd" in info.flags or isa == "AVX-512"
    per_cycle = 2 * 2 * (bits // 32) if fma else 2 * (bits // 32)
    return per_cycle, (f"fp32 {isa}{' FMA' if fma else ''}: {per_cycle} FLOPs/cycle/core "
                       f"[{'2 full-width FMA units' if fma else 'no FMA: one add and one multiply'}/core "
                       "assumed: microarchitecture not in bench/engine/cpu_peak.py]")


def measured_peak(info: CpuInfo, threads: int, bf16: bool, cache_dir: Path, n: int | None = None,
                  repeats: int | None = None) -> tuple[float, str]:
    """(FLOP/s, basis) of the best of `repeats` n x n matmuls (MEASURE_REPEATS, MEASURE_N) on
    `threads` threads, in bf16 or fp32; measured once, then read from `cache_dir`."""
    from bench.engine.memo import remembered

    n, repeats = n or MEASURE_N, repeats or MEASURE_REPEATS
    dtype = "bf16" if bf16 else "fp32"
    key = [info.model_name, info.vendor, info.family, info.model, sorted(info.flags), threads, dtype, n]
    flops, when = remembered("peak", key, lambda: (_time_matmul(threads, bf16, n, repeats), time.strftime("%Y-%m-%d")),
                             cache_dir)
    return flops, (f"CPU: measured, {dtype} {n}x{n} matmul on {threads} thread(s), best of {repeats}: "
                   f"{flops / 1e9:.1f} GFLOP/s (measured {when}, kept in {cache_dir})")


def _time_matmul(threads: int, bf16: bool, n: int, repeats: int) -> float:
    """FLOP/s of the best of `repeats` n x n matmuls."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        dtype = torch.bfloat16 if bf16 else torch.float32
        generator = torch.Generator().manual_seed(0)
        a = torch.randn(n, n, generator=generator).to(dtype)
        b = torch.randn(n, n, generator=generator).to(dtype)
        torch.matmul(a, b)  # the first call pays for the kernel's set-up
        best = float("inf")
        for _ in range(repeats):
            t = time.perf_counter()
            torch.matmul(a, b)
            best = min(best, time.perf_counter() - t)
    finally:
        torch.set_num_threads(previous)
    return 2.0 * n ** 3 / best
