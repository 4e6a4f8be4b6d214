"""How the report writes numbers: scores, counts, seconds, megabytes, rates, parameter counts, and
the sort keys of table cells. A missing figure (None or NaN) is a dash, never "nan"."""

from __future__ import annotations

import math
from typing import Any, Callable


def missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def fmt_mean_std(mean: float, std: float, fmt: Callable[[float], str]) -> str:
    """"0.931 ± 0.004"; the bare value for one seed; "—" when absent (never "nan")."""
    if missing(mean):
        return "—"
    return fmt(mean) if missing(std) else f"{fmt(mean)} ± {fmt(std)}"


def fmt_score(x: float) -> str:
    return f"{x:.3f}"


def fmt_count(n: float) -> str:
    """1.2M, 350.0k, 0."""
    for scale, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= scale:
            return f"{n / scale:.1f}{suffix}"
    return f"{n:.0f}"


def fmt_seconds(s: float) -> str:
    return f"{s:,.0f} s" if s >= 100 else f"{s:.1f} s"


def fmt_mb(mb: float) -> str:
    return f"{mb:,.0f} MB"


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}/s" if x >= 100 else f"{x:.1f}/s"


def fmt_ms(ms: float) -> str:
    return f"{ms:,.0f} ms" if ms >= 100 else f"{ms:.1f} ms" if ms >= 1 else f"{ms:.2f} ms"


def fmt_bytes(n: float) -> str:
    """4.0 MB, 90.9 MB, 1.2 GB (decimal units, as disks are sold)."""
    for scale, suffix in ((1e9, "GB"), (1e6, "MB"), (1e3, "kB")):
        if abs(n) >= scale:
            return f"{n / scale:.1f} {suffix}"
    return f"{n:.0f} B"


def fmt_kwh(kwh: float) -> str:
    """Energy in Wh, the unit a single run's figure reads in."""
    return f"{kwh * 1e3:.3g} Wh"


def fmt_params(trainable: float, pct: float) -> str:
    if missing(trainable):
        return "—"
    return fmt_count(trainable) + ("" if missing(pct) else f" ({pct:.2g}%)" if pct < 1 else f" ({pct:.0f}%)")


def sort_value(value: Any) -> str:
    """The data-value a header click sorts on: the raw number, or "" (sorted last) when absent."""
    return "" if missing(value) else repr(float(value))
