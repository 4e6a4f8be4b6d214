"""`--launcher ray [--address auto|HOST:PORT|ray://HOST:PORT]`: every run is a Ray task that executes the
same worker in its own subprocess (`runner.run_one` into a private temporary folder on its node) and
returns the record; the driver alone writes records, so the nodes share no filesystem.

- Resources: a run on `cuda` asks for one GPU, a CPU run for one CPU (`--gpus-per-run`,
  `--cpus-per-run` override), so Ray runs as many at once as the nodes have of them.
- Faults: a run whose worker subprocess dies gets the local launcher's record (written on its node by
  run_one); a Ray worker or node that dies is retried `--retries` times, then recorded `failed`
  naming the cause; Ray's own memory monitor killing it is `oom`.
- Ctrl-C / SIGTERM: every outstanding task is cancelled (a running one records `cancelled`, one
  not started yet leaves nothing), every finished record is kept.
- Without --address Ray starts on this machine for this command and stops with it.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import bench
from bench.core.errors import BenchError, Stopped, signal_words
from bench.core.record import Record
from bench.core.records import record_path, write_record
from bench.running.config import RunSpec
from bench.running.launchers.base import Launcher, LaunchOptions
from bench.running.runner import GRACE_S, SAMPLE_S, Outcome, ResultsUnwritable, StopFlag
from bench.running.results import base_record

CONNECT_TIMEOUT_S = 5  # a cluster address that does not answer in this long is unreachable
RAY_PORT, CLIENT_PORT = 6379, 10001  # Ray's default GCS and Ray Client ports


def execute_on_node(spec_dict: dict, quiet: bool, secret_env: dict) -> dict:
    """The Ray task: the run in its own worker subprocess on this node, recorded into a temporary
    folder that goes away with the task; the record travels back to the driver as the result."""
    from bench.running.runner import run_one

    spec = RunSpec(**spec_dict)
    # Ray's worker blocks SIGINT and SIGTERM, and a child inherits the mask: unblocked, the run's
    # worker can be cancelled (it records `cancelled`) instead of running on to its end
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        with tempfile.TemporaryDirectory(prefix="ftbench-ray-") as tmp:
            try:
                outcome = run_one(spec, tmp, quiet=quiet, secret_env=secret_env, preload=False)  # one run per task: nothing to share
            except Stopped as stop:  # ray.cancel: the worker recorded the run cancelled
                outcome = stop.outcome
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    record = outcome.record.to_dict() if outcome.record is not None else None  # plain JSON data across nodes
    return {"record": record, "seconds": outcome.seconds, "node": platform.node()}


def import_ray():
    try:
        import ray
    except ImportError:
        raise BenchError("--launcher ray needs Ray, which is not installed here: `pip install 'ray>=2.9'` (or "
                         "rerun scripts/setup.sh), or use --launcher local") from None
    return ray


def check_reachable(address: str) -> None:
    """One clear error at once for a cluster address that does not answer (ray.init would retry for minutes)."""
    if address == "auto":
        return  # ray.init itself says at once when no cluster runs here
    client = address.startswith("ray://")
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        host, port = parts.hostname, parts.port or (CLIENT_PORT if client else RAY_PORT)
    except ValueError:
        host, port = None, None
    if not host:
        raise BenchError(f"--address {address!r}: use auto, HOST:PORT (a Ray head's GCS port) or ray://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise BenchError(f"cannot reach Ray at {address} ({exc.strerror or exc}); start it on the head node with "
                         f"`ray start --head` (and `ray start --address HEAD:{RAY_PORT}` on the others), or drop "
                         "--address to run Ray on this machine") from None


class RayLauncher(Launcher):
    name = "ray"
    description = "each run a Ray task on whichever node has its CPU or GPU free; records come back to this process"

    def __init__(self, options: LaunchOptions):
        super().__init__(options)
        self.ray = import_ray()
        self.started_here = False
        self._submitted: dict = {}  # ref -> (spec, results folder, start time) of the matrix's runs
        self._connect(options.address)
        self.task = self.ray.remote(execute_on_node)

    def _connect(self, address: str | None) -> None:
        ray = self.ray
        if ray.is_initialized():  # joined already by this process (a test's own cluster, a notebook)
            return
        if address:
            check_reachable(address)
        # the workers import the checkout this driver runs (nodes elsewhere need ftbench installed)
        root = str(Path(bench.__file__).resolve().parent.parent)
        env = {"PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)}
        try:
            ray.init(address=address or None, include_dashboard=False, logging_level="ERROR",
                     runtime_env={"env_vars": env})
        except Exception as exc:  # noqa: BLE001 - no cluster at 'auto', a refused client, a version mismatch
            why = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            where = f"at {address}" if address else "on this machine"
            raise BenchError(f"cannot start or reach Ray {where} ({why}); start a cluster with `ray start --head`, "
                             "pass its --address, or use --launcher local") from None
        self.started_here = not address

    def close(self) -> None:
        if self.started_here and self.ray.is_initialized():
            self.ray.shutdown()

    # ------------------------------------------------------------ one task

    def resources(self, spec: RunSpec) -> dict:
        gpus = self.options.gpus_per_run
        if gpus is None:
            gpus = 1 if spec.device.startswith("cuda") else 0
        cpus = self.options.cpus_per_run if self.options.cpus_per_run is not None else 1
        return {"num_cpus": cpus, "num_gpus": gpus}

    def submit(self, spec: RunSpec, quiet: bool, secret_env: dict | None = None):
        # max_retries: Ray starts the task again when its worker process or node died (not for a run
        # that failed: that is a record); a secret travels as a task argument, never in the record
        return self.task.options(max_retries=self.options.retries, retry_exceptions=False,
                                 **self.resources(spec)).remote(spec.to_dict(), quiet, secret_env or {})

    def record_of(self, ref, spec: RunSpec) -> Record | None:
        """The run's record from its finished task; None for a task cancelled before it started."""
        ray = self.ray
        try:
            data = ray.get(ref)["record"]
            return Record.from_dict(data) if data is not None else None
        except ray.exceptions.TaskCancelledError:
            return None
        except ray.exceptions.OutOfMemoryError as exc:  # Ray's memory monitor killed the worker: evidence
            return base_record(spec, "oom", f"Ray's memory monitor killed the run's worker: {_first_line(exc)}")
        except ray.exceptions.RayError as exc:  # the worker process or its node died, after the retries
            return base_record(spec, "failed", f"the Ray worker running it died ({type(exc).__name__}: "
                                               f"{_first_line(exc)}) after {self.options.retries} retr"
                                               f"{'y' if self.options.retries == 1 else 'ies'}")

    def _cancel(self, inflight: dict, signum: int) -> dict:
        """Cancel every outstanding task; {ref: record} of those that record something within GRACE_S."""
        ray = self.ray
        for ref in inflight:
            ray.cancel(ref)  # running: KeyboardInterrupt in the task, its worker records `cancelled`
        records, waiting, deadline = {}, list(inflight), time.monotonic() + GRACE_S
        while waiting and time.monotonic() < deadline:
            ready, waiting = ray.wait(waiting, num_returns=len(waiting), timeout=SAMPLE_S)
            for ref in ready:
                rec = self.record_of(ref, inflight[ref])
                if rec is not None:
                    records[ref] = rec
        for ref in waiting:  # did not answer in time: stopped hard, recorded by us
            ray.cancel(ref, force=True)
            records[ref] = base_record(inflight[ref], "cancelled", f"{signal_words(signum)} during the run")
        for rec in records.values():
            if rec.status == "cancelled":  # say what stopped the driver, not what Ray sent the task
                rec.error = f"{signal_words(signum)} during the run"
        return records

    # ------------------------------------------------------------ the launcher's methods

    def run_one(self, spec: RunSpec, results_dir: str | Path, quiet: bool = False, secret_env: dict | None = None,
                stop: StopFlag | None = None) -> Outcome:
        t0 = time.perf_counter()
        ref = self.submit(spec, quiet, secret_env)
        try:
            while not self.ray.wait([ref], timeout=SAMPLE_S)[0]:
                if stop is not None and stop.is_set():
                    raise KeyboardInterrupt(stop.signum)
        except KeyboardInterrupt as exc:
            signum = stop.signum if stop is not None and stop.is_set() else getattr(exc, "signum", signal.SIGINT)
            rec = self._cancel({ref: spec}, signum).get(ref) or base_record(spec, "cancelled",
                                                                           f"{signal_words(signum)} before it started")
            outcome = Outcome(spec, rec.status, _save(results_dir, spec, rec), time.perf_counter() - t0)
            raise Stopped(signum, outcome) from None
        rec = self.record_of(ref, spec) or base_record(spec, "cancelled", "cancelled on the Ray cluster")
        return Outcome(spec, rec.status, _save(results_dir, spec, rec), time.perf_counter() - t0)

    def start(self, spec: RunSpec, results_dir: str | Path, quiet: bool):
        ref = self.submit(spec, quiet)
        self._submitted[ref] = (spec, results_dir, time.perf_counter())
        return ref

    def starting(self, spec: RunSpec) -> str:
        res = self.resources(spec)
        return f": submitted to Ray ({res['num_cpus']:g} CPU, {res['num_gpus']:g} GPU)"

    def finished(self, tickets: list, timeout: float) -> list:
        ready, _ = self.ray.wait(tickets, num_returns=1, timeout=timeout) if tickets else ([], [])
        ended = []
        for ref in ready:
            spec = self._submitted[ref][0]
            rec = self.record_of(ref, spec) or base_record(spec, "cancelled", "cancelled on the Ray cluster")
            ended.append((ref, self._saved(ref, rec)))
        return ended

    def cancel(self, tickets: list, signum: int) -> list:
        inflight = {ref: self._submitted[ref][0] for ref in tickets}
        return [(ref, self._saved(ref, rec)) for ref, rec in self._cancel(inflight, signum).items()]

    def _saved(self, ref, rec: Record) -> Outcome:
        spec, results_dir, t0 = self._submitted.pop(ref)
        return Outcome(spec, rec.status, _save(results_dir, spec, rec), time.perf_counter() - t0)


def _save(results_dir, spec: RunSpec, rec: Record) -> Record:
    """The driver writes every record (atomically: write_record is temp file + rename)."""
    out = record_path(results_dir, spec.run_id)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_record(out, rec)
    except OSError as exc:
        raise ResultsUnwritable(f"cannot write the record of {spec.label()} to {out} ({exc.strerror or exc}); "
                                "the results folder is full or read-only: free space or pass --results-dir with a "
                                "writable folder, then rerun (finished runs are skipped)") from None
    return rec


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
