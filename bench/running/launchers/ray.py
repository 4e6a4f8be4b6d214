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
from bench.core.errors import BenchError
from bench.core.record import Record
from bench.core.records import is_done, record_path, write_record
from bench.running.claims import Claim
from bench.running.config import RunSpec
from bench.running.launchers.base import Launcher, LaunchOptions
from bench.running.runner import (GRACE_S, SAMPLE_S, Interrupted, Outcome, ResultsUnwritable, StopFlag, _skipped,
                                  _take, _written_after, describe)
from bench.running.worker import base_record, signal_words

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
                outcome = run_one(spec, tmp, quiet=quiet, secret_env=secret_env)
            except Interrupted as stop:  # ray.cancel: the worker recorded the run cancelled
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

    def cancel(self, inflight: dict, signum: int) -> dict:
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

    # ------------------------------------------------------------ the launcher's two methods

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
            rec = self.cancel({ref: spec}, signum).get(ref) or base_record(spec, "cancelled",
                                                                           f"{signal_words(signum)} before it started")
            outcome = Outcome(spec, rec.status, _save(results_dir, spec, rec), time.perf_counter() - t0)
            raise Interrupted(outcome, signum) from None
        rec = self.record_of(ref, spec) or base_record(spec, "cancelled", "cancelled on the Ray cluster")
        return Outcome(spec, rec.status, _save(results_dir, spec, rec), time.perf_counter() - t0)

    def run_matrix(self, specs: list[RunSpec], results_dir: str | Path, force: bool = False, quiet: bool = False,
                   log=print) -> list[Outcome]:
        """Submit every run not done (claimed, as the local launcher does), then record them as they finish;
        runs another `bench` process holds are submitted once it lets them go, unless it finished them."""
        outcomes: list[Outcome] = []
        started = time.time()
        inflight: dict = {}  # ref -> spec
        about: dict = {}  # ref -> (head, claim, t0)
        deferred = []
        numbered = [(f"[{i}/{len(specs)}] {spec.label()}", spec) for i, spec in enumerate(specs, 1)]
        try:
            for head, spec in numbered:
                if not force and is_done(results_dir, spec.run_id):
                    outcomes.append(_skipped(spec, results_dir, head, log))
                    continue
                claim = Claim(results_dir, spec.run_id)
                if not _take(claim):
                    log(f"{head}: being run by another bench process (pid {claim.holder()}); coming back to it "
                        "at the end")
                    deferred.append((head, spec, claim))
                    continue
                self._start(spec, head, claim, quiet, inflight, about, log)
            self._collect(inflight, about, results_dir, outcomes, log)
            for head, spec, claim in deferred:
                log(f"{head}: waiting for the other bench process (pid {claim.holder()}) to finish it ...")
                _take(claim, wait=True)
                if is_done(results_dir, spec.run_id) and (not force or _written_after(results_dir, spec, started)):
                    claim.release()
                    outcomes.append(_skipped(spec, results_dir, head, log,
                                             "skipped (done by another bench process meanwhile)"))
                    continue
                self._start(spec, head, claim, quiet, inflight, about, log)
                self._collect(inflight, about, results_dir, outcomes, log)
        except KeyboardInterrupt as exc:
            signum = getattr(exc, "signum", signal.SIGINT)
            for ref, rec in self.cancel(inflight, signum).items():
                outcomes.append(self._finish(ref, rec, inflight, about, results_dir, log))
            raise
        finally:
            for _, claim, _ in about.values():
                claim.release()
        return outcomes

    def _start(self, spec, head, claim, quiet, inflight, about, log) -> None:
        ref = self.submit(spec, quiet)
        inflight[ref], about[ref] = spec, (head, claim, time.perf_counter())
        res = self.resources(spec)
        log(f"{head}: submitted to Ray ({res['num_cpus']:g} CPU, {res['num_gpus']:g} GPU)")

    def _collect(self, inflight, about, results_dir, outcomes, log) -> None:
        while inflight:
            ready, _ = self.ray.wait(list(inflight), num_returns=1, timeout=SAMPLE_S)
            for ref in ready:
                rec = self.record_of(ref, inflight[ref]) or base_record(inflight[ref], "cancelled",
                                                                        "cancelled on the Ray cluster")
                outcomes.append(self._finish(ref, rec, inflight, about, results_dir, log))

    def _finish(self, ref, rec, inflight, about, results_dir, log) -> Outcome:
        spec = inflight.pop(ref)
        head, claim, t0 = about.pop(ref)
        try:
            _save(results_dir, spec, rec)
        finally:
            claim.release()
        outcome = Outcome(spec, rec.status, rec, time.perf_counter() - t0)
        log(f"{head}: {describe(outcome)}")
        return outcome


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
