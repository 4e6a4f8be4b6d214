"""One run in its own worker subprocess, waited for (`run_one`): the record written by the worker, or
by us when it died without one; on Ctrl-C or SIGTERM the run is recorded `cancelled`.

The worker gets its spec on stdin (no file on disk: a tuning storage URL never touches /tmp) and
keeps that pipe open: it exits when its parent does, however the parent died (bench/running/worker.py).
The matrix around it (skips, claims, the log) is bench/running/matrix.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import bench
from bench.running.config import RunSpec
from bench.core.errors import BenchError, Stopped, signal_words
from bench.running import preloaded
from bench.running.memwatch import MemoryWatch
from bench.core.record import Record
from bench.core.records import last_written, record_path, write_record
from bench.running.results import base_record
from bench.running.worker import EXIT_RECORD_UNWRITABLE

GRACE_S = 60  # how long a cancelled worker gets to write its own record
SAMPLE_S = 0.25  # how often the parent samples its worker's memory (the OOM evidence)


class ResultsUnwritable(BenchError):
    """A record could not be written (read-only folder, disk full): the matrix stops cleanly."""


@dataclass
class Outcome:
    spec: RunSpec
    status: str  # ok | failed | oom | cancelled | pruned | skipped
    record: Record | None
    seconds: float


def check_writable(folder: str | Path, what: str = "results folder", flag: str = "--results-dir") -> None:
    """Create `folder` and write, sync and remove a probe file in it; one clear error when that fails."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".write-probe-", dir=folder)
        try:
            os.write(fd, b"x" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise BenchError(f"{what} '{folder}' is not writable ({exc.strerror or exc}); free space there, fix "
                         f"its permissions, or pass {flag} with a writable folder") from None


def worker_env(quiet: bool, extra: dict | None = None) -> dict:
    """The worker's environment: ours, plus the folder this `bench` was imported from first on
    PYTHONPATH, so the worker runs the same checkout as its parent whatever the cwd."""
    env = dict(os.environ, FTBENCH_QUIET="1" if quiet else os.environ.get("FTBENCH_QUIET", "0"),
               FTBENCH_PARENT_PID=str(os.getpid()), **(extra or {}))
    root = str(Path(bench.__file__).resolve().parent.parent)
    if "site-packages" not in root:
        env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    return env


class StopFlag:
    """Set by the main thread on Ctrl-C or SIGTERM, so runs that other threads wait on (`bench tune
    --workers N`) are cancelled as the main thread's own run would be."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signum: int = signal.SIGINT

    def set(self, signum: int = signal.SIGINT) -> None:
        self.signum = signum
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def run_one(spec: RunSpec, results_dir: str | Path, quiet: bool = False, secret_env: dict | None = None,
            stop: StopFlag | None = None, preload: bool = True) -> Outcome:
    """Start the worker process and wait; write the record ourselves when it died without one.
    `secret_env` reaches the worker as environment variables only (never a file, never a record).
    `stop`, once set, cancels the run as Ctrl-C does (for a run waited on outside the main thread).
    `preload`: the worker may be forked from this process's preloaded server (bench/running/preloaded.py)."""
    out = record_path(results_dir, spec.run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = last_written(out)  # an ok record stays; a failed attempt beside it is written apart
    t0 = time.perf_counter()
    proc = watch = None
    interrupted: int | None = None  # the signal that stopped us
    try:
        # a forked worker's start waits for the server's imports the first time: Ctrl-C may come here
        proc = start_worker(spec, out, worker_env(quiet, secret_env), secret_env or {}, preload)
        watch = MemoryWatch.start(proc.pid)
        try:
            proc.stdin.write((json.dumps(spec.to_dict()) + "\n").encode())
            proc.stdin.flush()  # kept open: its EOF tells the worker we are gone
        except BrokenPipeError:  # the worker died at once; its exit code says why
            pass
        code = _wait(proc, watch, stop=stop)
    except KeyboardInterrupt as exc:  # Ctrl-C (the worker got it too) or SIGTERM (it did not): let it record
        interrupted = getattr(exc, "signum", signal.SIGINT)
        if proc is not None:
            try:
                proc.send_signal(interrupted)  # the worker acts on the first and ignores repeats
            except ProcessLookupError:
                pass
            code = _wait(proc, watch, deadline=time.monotonic() + GRACE_S)
    finally:
        if proc is not None:
            if proc.poll() is None:  # an error of ours: never leave the worker behind
                proc.kill()
                proc.wait()
            try:
                proc.stdin.close()
            except OSError:
                pass
    rec = last_written(out)
    fresh = rec is not None and rec != previous and rec.run_id == spec.run_id
    if not fresh:
        if interrupted:
            status, why = "cancelled", f"{signal_words(interrupted)} during the run"
        elif code in (-signal.SIGKILL, 137):
            status, why = watch.killed_verdict(code)
        elif code == EXIT_RECORD_UNWRITABLE:
            status, why = "failed", "the worker could not write its record"
        else:
            status, why = "failed", f"worker exited with code {code} without writing a record"
        rec = base_record(spec, status, why)
        try:
            write_record(out, rec)
        except OSError as exc:
            raise ResultsUnwritable(f"cannot write the record of {spec.label()} to {out} ({exc.strerror or exc}); "
                                    "the results folder is full or read-only: free space or pass --results-dir "
                                    "with a writable folder, then rerun (finished runs are skipped)") from None
    outcome = Outcome(spec, rec.status, rec, time.perf_counter() - t0)
    if interrupted:
        raise Stopped(interrupted, outcome)
    return outcome


def start_worker(spec: RunSpec, out: Path, env: dict, secret_env: dict, preload: bool):
    """The worker: forked from the preloaded server where this process expects several runs that
    suit it, else a fresh `python -m bench.running.worker`. Either has .pid, .stdin, wait, poll,
    send_signal and kill."""
    if preload and preloaded.wanted(spec):
        try:
            return preloaded.SERVER.spawn(str(out), env, secret_keys=set(secret_env))
        except OSError as exc:  # a server that could not start or died: this run starts fresh
            print(f"warning: the preloaded worker server failed ({exc}); starting this run's worker afresh",
                  file=sys.stderr)
    return subprocess.Popen([sys.executable, "-m", "bench.running.worker", "-", str(out)], stdin=subprocess.PIPE,
                            env=env)


def _wait(proc, watch: MemoryWatch, deadline: float | None = None,
          stop: StopFlag | None = None) -> int:
    """The worker's exit code, sampling its memory meanwhile; killed at `deadline`."""
    while True:
        try:
            return proc.wait(timeout=SAMPLE_S)
        except subprocess.TimeoutExpired:
            if stop is not None and stop.is_set():
                raise Stopped(stop.signum) from None
            watch.sample()
            if deadline is not None and time.monotonic() > deadline:
                proc.kill()
                return proc.wait()
