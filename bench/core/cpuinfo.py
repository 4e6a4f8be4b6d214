"""/proc/cpuinfo, parsed in one place: the CPU's name, vendor, family and model (its
microarchitecture, behind peak FLOP/s), its feature flags (bf16 support, the SIMD width) and its
highest reported clock."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

PATH = "/proc/cpuinfo"


@dataclass(frozen=True)
class CpuInfo:
    model_name: str | None = None
    flags: frozenset[str] = frozenset()
    max_mhz: float | None = None  # the highest "cpu MHz" line (a VM's nominal clock)
    vendor: str | None = None  # vendor_id: GenuineIntel, AuthenticAMD, ...
    family: int | None = None  # "cpu family"
    model: int | None = None  # "model" (decimal, as the kernel writes it)


def _int(value: str) -> int | None:
    try:
        return int(value.strip(), 0)
    except ValueError:
        return None


def parse(text: str) -> CpuInfo:
    """The first CPU's name, vendor, family, model and flags ("Features" on ARM), and the highest
    "cpu MHz"."""
    name, flags, mhz = None, frozenset(), None
    vendor, family, model = None, None, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and name is None:
            name = value.strip()
        elif key == "vendor_id" and vendor is None:
            vendor = value.strip()
        elif key == "cpu family" and family is None:
            family = _int(value)
        elif key == "model" and model is None:
            model = _int(value)
        elif key in ("flags", "Features") and not flags:
            flags = frozenset(value.split())
        elif key == "cpu MHz":
            try:
                mhz = max(mhz or 0.0, float(value))
            except ValueError:
                pass
    return CpuInfo(name, flags, mhz, vendor, family, model)


@functools.lru_cache(maxsize=1)
def read() -> CpuInfo:
    """This machine's (empty where there is no /proc/cpuinfo)."""
    try:
        return parse(Path(PATH).read_text())
    except OSError:
        return CpuInfo()
