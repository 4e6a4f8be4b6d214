"""What a trained result costs to serve: the serving measurement of every `ok` run, taken on its
`Served` object (strategies/shared/base.py) after the test evaluation.

- latency per single text: `predict([text])` timed on LATENCY_TEXTS texts of the evaluated split
  (cycled where it has fewer), after WARMUP untimed calls; p50, p95 and mean in milliseconds;
- throughput at `serve_batch`: texts per second over whole batches of `serve_batch` holding at least
  THROUGHPUT_TEXTS texts (one batch at the default 32), after one untimed batch on CUDA;
- memory while serving: the process's peak resident set over the warm-up and the timings (VmHWM
  reset through /proc/self/clear_refs first; where the kernel refuses, VmRSS sampled every 5 ms),
  less the resident set before; on CUDA the allocator's peak over the same span;
- bytes to ship: `served.save(a temporary folder)` -> ShipSize (this run's own part, the base a
  deployment must already have, their sum); the folder is removed;
- the LoRA family: the same for `served.merged()` where it is a Served, else its reason.

A measurement never fails a run: a step that raises leaves its figures null and says why in `error`.
FTBENCH_SERVING=off skips it (the record says so), for runs where its seconds matter more.
"""

from __future__ import annotations

import itertools
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.params import param
from bench.core.switches import turned_off
from bench.engine.trackers import reset_peak_rss

LATENCY_TEXTS = 50  # single-text calls timed (the issue asks for at least 50)
WARMUP = 3  # untimed single-text calls first: lazy initialization, caches, allocator
SERVE_BATCH = 32  # the default serving batch (--param serve_batch=N)
# texts timed for throughput: a run pays for this in every run (about 4 s a batch of 32 BBC texts through
# MiniLM on 2 CPU cores), so one batch at the default, several where the batch is smaller
THROUGHPUT_TEXTS = 32
NOT_SERVED = "not measured: the strategy returned no served model"


@dataclass
class ServeParams:
    """The harness's own parameter, checked by bench.running.plan like a strategy's."""

    serve_batch: int = param(SERVE_BATCH, ge=1, le=4096)


def cycled(texts: list[str], n: int) -> list[str]:
    """`n` texts: `texts` in order, repeated where it holds fewer."""
    if not texts:
        raise ValueError("no texts to serve")
    return list(itertools.islice(itertools.cycle(texts), n))


def _status_kb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


class _PeakRss:
    """The resident set's peak over a span of this process: VmHWM after a reset where the kernel
    allows it (writing 5 to /proc/self/clear_refs), else VmRSS sampled in a thread."""

    def __enter__(self) -> "_PeakRss":
        self.before_kb = _status_kb("VmRSS")
        self.basis, self._stop, self._sampled = "VmHWM reset at the start (clear_refs)", threading.Event(), 0.0
        if not reset_peak_rss():
            self.basis = "VmRSS sampled every 5 ms"
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._sampled = max(self._sampled, _status_kb("VmRSS") or 0.0)

    def __exit__(self, *exc) -> None:
        if self.basis.startswith("VmRSS"):
            self._stop.set()
            self._thread.join()
            self.peak_kb = max(self._sampled, _status_kb("VmRSS") or 0.0) or None
        else:
            self.peak_kb = _status_kb("VmHWM")


def _cuda_reset(device: str) -> bool:
    if not device.startswith("cuda"):
        return False
    import torch

    if not torch.cuda.is_available():
        return False
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    return True


def timings(served: Any, texts: list[str], serve_batch: int, warm_batch: bool = False) -> dict[str, Any]:
    """Latency and throughput figures of `served` on `texts` (module docstring), warm-up excluded;
    `warm_batch`: one untimed batch before the throughput's (CUDA picks kernels and grows its
    allocator per new shape; on a CPU the single-text warm-up has done what there is to do, and a
    batch of SmolLM2 there costs seconds in every run)."""
    import numpy as np

    singles = cycled(texts, WARMUP + LATENCY_TEXTS)
    for text in singles[:WARMUP]:
        served.predict([text])
    latencies = []
    for text in singles[WARMUP:]:
        t = time.perf_counter()
        served.predict([text])
        latencies.append(time.perf_counter() - t)
    ms = np.asarray(latencies) * 1e3
    n = serve_batch * -(-THROUGHPUT_TEXTS // serve_batch)  # whole batches, at least THROUGHPUT_TEXTS texts
    batch_texts = cycled(texts, serve_batch + n)
    if warm_batch:
        served.predict(batch_texts[:serve_batch])
    t = time.perf_counter()
    for start in range(serve_batch, len(batch_texts), serve_batch):
        served.predict(batch_texts[start: start + serve_batch])
    elapsed = time.perf_counter() - t
    return {"latency_texts": LATENCY_TEXTS, "warmup": WARMUP, "latency_p50_ms": round(float(np.percentile(ms, 50)), 3),
            "latency_p95_ms": round(float(np.percentile(ms, 95)), 3), "latency_mean_ms": round(float(ms.mean()), 3),
            "serve_batch": serve_batch, "throughput_texts": n,
            "throughput_per_s": round(n / elapsed, 3) if elapsed > 0 else None}


def measure_one(served: Any, texts: list[str], serve_batch: int, device: str) -> dict[str, Any]:
    """Every figure of one served variant; a failed step's figures stay null, its reason in `error`."""
    out: dict[str, Any] = {"measured": True, "device": device}
    errors = []
    t0 = time.perf_counter()
    try:
        on_cuda = _cuda_reset(device)
        with _PeakRss() as rss:
            out.update(timings(served, texts, serve_batch, warm_batch=on_cuda))
        if rss.peak_kb is not None and rss.before_kb is not None:
            out.update(peak_rss_mb=round(rss.peak_kb / 1024, 1),
                       rss_delta_mb=round(max(rss.peak_kb - rss.before_kb, 0.0) / 1024, 1))
        out["memory_basis"] = rss.basis
        if on_cuda:
            import torch

            out["peak_gpu_allocated_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    except Exception as exc:  # noqa: BLE001 - a measurement never fails a run
        errors.append(f"timing: {type(exc).__name__}: {exc}")
    try:
        with tempfile.TemporaryDirectory(prefix="ftbench-ship-") as tmp:
            size = served.save(Path(tmp))
        out.update(ship_specific_bytes=int(size.specific_bytes), ship_base_bytes=int(size.base_bytes),
                   ship_total_bytes=int(size.total_bytes))
    except Exception as exc:  # noqa: BLE001
        errors.append(f"save: {type(exc).__name__}: {exc}")
    out["time_s"] = round(time.perf_counter() - t0, 3)
    out["error"] = "; ".join(errors) or None
    return out


def measure(served: Any, texts: list[str], serve_batch: int = SERVE_BATCH, device: str = "cpu") -> dict[str, Any]:
    """The record's `serving` block (bench/core/record.Serving) for `served` (None: not measured)."""
    if served is None:
        return {"measured": False, "reason": NOT_SERVED}
    if turned_off("FTBENCH_SERVING"):
        return {"measured": False, "reason": "not measured: turned off (FTBENCH_SERVING=off)"}
    if not texts:
        return {"measured": False, "reason": "not measured: the evaluated split has no texts"}
    out = measure_one(served, texts, serve_batch, device)
    try:
        merged = served.merged()
    except Exception as exc:  # noqa: BLE001
        merged = f"merging failed: {type(exc).__name__}: {exc}"
    if isinstance(merged, str):
        out["merged_reason"] = merged
    else:
        out["merged"] = measure_one(merged, texts, serve_batch, device)
    return out
