"""Run a matrix of RunSpecs, each in its own subprocess; skip runs whose `ok` record exists;
on Ctrl-C mark the running run `cancelled` and keep every finished record."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.config import RunSpec
from bench.records import is_done, read_record, record_path, write_record
from bench.worker import base_record

GRACE_S = 60  # how long a cancelled worker gets to write its own record


@dataclass
class Outcome:
    spec: RunSpec
    status: str  # ok | failed | oom | cancelled | pruned | skipped
    record: dict | None
    seconds: float


def run_one(spec: RunSpec, results_dir: str | Path, quiet: bool = False) -> Outcome:
    """Start the worker process and wait; write the record ourselves when it died without one."""
    out = record_path(results_dir, spec.run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    previous = read_record(out)
    fd, spec_file = tempfile.mkstemp(prefix="ftbench-spec-", suffix=".json")
    with os.fdopen(fd, "w") as fh:
        json.dump(spec.to_dict(), fh)
    env = dict(os.environ, FTBENCH_QUIET="1" if quiet else os.environ.get("FTBENCH_QUIET", "0"))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "bench.worker", spec_file, str(out)], env=env)
    interrupted = False
    try:
        code = proc.wait()
    except KeyboardInterrupt:  # the worker got the same SIGINT (one process group): let it record
        interrupted = True
        try:
            code = proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
    finally:
        Path(spec_file).unlink(missing_ok=True)
    rec = read_record(out)
    fresh = rec is not None and rec != previous and rec.get("run_id") == spec.run_id
    if not fresh:
        if interrupted:
            status, why = "cancelled", "interrupted (Ctrl-C) during the run"
        elif code in (-signal.SIGKILL, 137):
            status, why = "oom", f"worker killed by SIGKILL (exit {code}): most likely out of memory"
        else:
            status, why = "failed", f"worker exited with code {code} without writing a record"
        rec = base_record(spec, status, why)
        write_record(out, rec)
    outcome = Outcome(spec, rec["status"], rec, time.perf_counter() - t0)
    if interrupted:
        raise Interrupted(outcome)
    return outcome


class Interrupted(Exception):
    def __init__(self, outcome: Outcome):
        super().__init__("interrupted")
        self.outcome = outcome


def describe(o: Outcome) -> str:
    if o.status == "skipped":
        return "skipped (an ok record exists; --force reruns it)"
    rec = o.record or {}
    if o.status != "ok":
        return f"{o.status.upper()}: {rec.get('error')}"
    m, c = rec["metrics"], rec["cost"]
    if (rec.get("model") or {}).get("random_weights"):
        return (f"ok  random weights: time and memory only, {c['time_s']['total']:.0f} s, "
                f"peak RSS {c['peak_rss_mb']:.0f} MB, trainable {c['trainable_params']:,}")
    base = rec.get("baseline")
    before = f" (untrained {base['accuracy']:.3f})" if base else ""
    return (f"ok  accuracy {m['accuracy']:.3f}{before}, balanced {m['balanced_accuracy']:.3f}, "
            f"{c['time_s']['total']:.0f} s, peak RSS {c['peak_rss_mb']:.0f} MB, "
            f"trainable {c['trainable_params']:,}")


def run_matrix(specs: list[RunSpec], results_dir: str | Path, force: bool = False,
               quiet: bool = False, log=print) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for i, spec in enumerate(specs, 1):
        head = f"[{i}/{len(specs)}] {spec.label()}"
        if not force and is_done(results_dir, spec.run_id):
            o = Outcome(spec, "skipped", read_record(record_path(results_dir, spec.run_id)), 0.0)
            outcomes.append(o)
            log(f"{head}: {describe(o)}")
            continue
        log(f"{head} ...")
        try:
            o = run_one(spec, results_dir, quiet=quiet)
        except Interrupted as stop:
            outcomes.append(stop.outcome)
            log(f"{head}: {describe(stop.outcome)}")
            raise KeyboardInterrupt from None
        outcomes.append(o)
        log(f"{head}: {describe(o)}")
    return outcomes
