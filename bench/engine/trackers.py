"""Measurements taken inside a run's own process: wall time by phase, counters, peak memory,
the per-epoch training curve, and progress bars."""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

from tqdm.auto import tqdm

PHASES = ("load", "prepare", "train", "eval")


def peak_rss_mb() -> float | None:
    """This process's own peak resident set (VmHWM). `ru_maxrss` of a child would be inflated by
    the parent's pages inherited at fork, so read /proc instead."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource  # not Linux: the best figure there is

    scale = 1024.0 * 1024.0 if sys.platform == "darwin" else 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def reset_peak_rss() -> bool:
    """Start this process's VmHWM afresh at its current resident set (writing 5 to
    /proc/self/clear_refs), so the peak is the run's and not its imports' transient allocations,
    in a fresh worker as in one forked from the preloaded server; False where the kernel refuses."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def gpu_peaks_mb() -> tuple[float | None, float | None]:
    import torch

    if not torch.cuda.is_available():
        return None, None
    return (
        torch.cuda.max_memory_allocated() / 2**20,
        torch.cuda.max_memory_reserved() / 2**20,
    )


class Tracker:
    """Collects what a run measures. One per run, created by the worker process."""

    def __init__(self, on_epoch: Callable[[dict[str, Any]], None] | None = None, quiet: bool = False):
        self.time_s: dict[str, float] = {}
        self.counters: dict[str, float] = {}
        self.history: list[dict[str, Any]] = []
        self._on_epoch = on_epoch  # tuning: reports to Optuna, may raise Pruned
        self.quiet = quiet
        self._t0 = time.perf_counter()

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time a phase; repeated phases of one name add up (e.g. eval before and after training)."""
        t = time.perf_counter()
        try:
            yield
        finally:
            self.time_s[name] = self.time_s.get(name, 0.0) + time.perf_counter() - t

    def count(self, key: str, n: float) -> None:
        self.counters[key] = self.counters.get(key, 0) + n

    def progress(self, iterable: Iterable | None = None, desc: str = "", total: int | None = None,
                 unit: str = "it", leave: bool = False) -> tqdm:
        return tqdm(iterable, desc=desc, total=total, unit=unit, leave=leave,
                    disable=self.quiet, file=sys.stderr, dynamic_ncols=True, mininterval=1.0)

    def log(self, message: str) -> None:
        if not self.quiet:
            tqdm.write(message, file=sys.stderr)

    def epoch(self, entry: dict[str, Any]) -> None:
        """Record one point of the training curve: {"epoch", "train_loss", "val_loss",
        "val_accuracy", ...}. Under tuning this may raise bench.core.errors.Pruned."""
        entry = {k: (float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and k != "epoch" else v)
                 for k, v in entry.items()}
        self.history.append(entry)
        self.log("  epoch {epoch}: ".format(**entry) + ", ".join(
            f"{k}={v:.4f}" for k, v in entry.items() if k != "epoch" and isinstance(v, float))
            + (" (best so far)" if entry.get("best") else ""))
        if self._on_epoch is not None:
            self._on_epoch(entry)

    def total_s(self) -> float:
        return time.perf_counter() - self._t0

    def cost(self) -> dict[str, Any]:
        """The record's cost block, less what the strategy adds (params, adapter size, ...)."""
        gpu_alloc, gpu_res = gpu_peaks_mb()
        time_s = {p: round(self.time_s.get(p, 0.0), 3) for p in PHASES}
        time_s.update({k: round(v, 3) for k, v in self.time_s.items() if k not in time_s})
        time_s["total"] = round(self.total_s(), 3)
        c = self.counters

        def rate(n_key: str, phase: str) -> float | None:
            t = self.time_s.get(phase, 0.0)
            return round(c[n_key] / t, 3) if c.get(n_key) and t > 0 else None

        return {
            "peak_rss_mb": round(peak_rss_mb() or 0.0, 1),
            "peak_gpu_allocated_mb": None if gpu_alloc is None else round(gpu_alloc, 1),
            "peak_gpu_reserved_mb": None if gpu_res is None else round(gpu_res, 1),
            "headline_memory": "peak_gpu_allocated_mb" if gpu_alloc is not None else "peak_rss_mb",
            "time_s": time_s,
            "train_examples_per_s": rate("train_examples", "train"),
            "eval_examples_per_s": rate("eval_examples", "eval"),
            "train_tokens_per_s": rate("train_tokens", "train"),
            "eval_tokens_per_s": rate("eval_tokens", "eval"),
            "embed_tokens_per_s": rate("embed_tokens", "embed"),  # feature-extract's frozen pass
            "counters": {k: int(v) if float(v).is_integer() else v for k, v in c.items()},
        }


def cpu_threads() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
