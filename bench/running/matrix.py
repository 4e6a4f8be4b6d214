"""The run matrix, one driver for every launcher: it numbers the runs, skips those whose `ok` record
exists (unless forced), claims each before it starts (bench/running/claims.py: a run another `bench`
process holds is deferred to the end, then waited for, and skipped if that process finished it), hands
the claimed runs to the launcher and logs every outcome in one line. A launcher says only how runs
execute (bench/running/launchers/base.py: `start`, `finished`, `cancel`). On Ctrl-C or SIGTERM what
runs is cancelled, what finished is kept, and the stop goes on up."""

from __future__ import annotations

import time
from pathlib import Path

from bench.core.errors import Stopped
from bench.core.records import attempt_path, is_done, read_record, record_path
from bench.running import preloaded
from bench.running.claims import Claim
from bench.running.config import RunSpec
from bench.running.runner import SAMPLE_S, Outcome, ResultsUnwritable
from bench.running.saved_models import CARD, model_folder, size_words


def run_matrix(launcher, specs: list[RunSpec], results_dir: str | Path, force: bool = False, quiet: bool = False,
               log=print) -> list[Outcome]:
    """Every spec whose `ok` record is missing (all of them with `force`), as many at once as the
    launcher runs; returns one outcome per spec, skipped ones included."""
    outcomes: list[Outcome] = []
    started = time.time()
    running: dict = {}  # the launcher's ticket -> (head, spec, claim)
    deferred: list[tuple[str, RunSpec, Claim]] = []

    def settle(ticket, outcome: Outcome) -> None:
        head, spec, claim = running.pop(ticket)
        claim.release()
        log(f"{head}: {describe(outcome)}{kept_note(results_dir, spec, outcome)}")
        outcomes.append(outcome)

    def begin(head: str, spec: RunSpec, claim: Claim) -> None:
        meanwhile = _written_after(results_dir, spec, started)
        rec = read_record(record_path(results_dir, spec.run_id))
        if rec is not None and rec.status == "ok" and (meanwhile or not (force or model_missing(results_dir, spec))):
            claim.release()
            outcomes.append(_skipped(spec, results_dir, head, log,
                                     "skipped (done by another bench process meanwhile)" if meanwhile else None))
            return
        log(f"{head}{launcher.starting(spec)}")
        try:
            ticket = launcher.start(spec, results_dir, quiet)
        except Stopped as stop:  # stopped while it ran (a launcher whose start waits for the run)
            claim.release()
            if stop.outcome is not None:
                log(f"{head}: {describe(stop.outcome)}{kept_note(results_dir, spec, stop.outcome)}")
                outcomes.append(stop.outcome)
            raise
        except BaseException:
            claim.release()
            raise
        running[ticket] = (head, spec, claim)
        for done, outcome in launcher.finished(list(running), timeout=0):
            settle(done, outcome)

    def drain() -> None:
        while running:
            for done, outcome in launcher.finished(list(running), timeout=SAMPLE_S):
                settle(done, outcome)

    preloaded.expect(sum(preloaded.suits(s) for s in specs if force or not is_done(results_dir, s.run_id)))
    try:
        for i, spec in enumerate(specs, 1):
            head = f"[{i}/{len(specs)}] {spec.label()}"
            if not force and is_done(results_dir, spec.run_id) and not model_missing(results_dir, spec):
                outcomes.append(_skipped(spec, results_dir, head, log))
                continue
            claim = Claim(results_dir, spec.run_id)
            if not _take(claim):
                log(f"{head}: being run by another bench process (pid {claim.holder()}); coming back to it at the end")
                deferred.append((head, spec, claim))
                continue
            begin(head, spec, claim)
        drain()
        for head, spec, claim in deferred:
            log(f"{head}: waiting for the other bench process (pid {claim.holder()}) to finish it ...")
            _take(claim, wait=True)
            begin(head, spec, claim)
            drain()
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", 2)
        for ticket, outcome in launcher.cancel(list(running), signum):
            settle(ticket, outcome)
        raise
    finally:
        for _, _, claim in running.values():
            claim.release()
    return outcomes


def describe(o: Outcome) -> str:
    """The run's outcome in one line of the log."""
    if o.status == "skipped":
        return "skipped (an ok record exists; --force reruns it)"
    rec = o.record
    if rec is None:
        return o.status
    if o.status != "ok":
        return f"{o.status.upper()}: {rec.error}"
    m, c = rec.metrics, rec.cost
    if m is None or c is None or None in (m.accuracy, m.balanced_accuracy):
        return "ok (its record lacks some figures)"
    total, rss = c.time_s.get("total"), c.peak_rss_mb
    cost = (f"{total:.0f} s, " if isinstance(total, (int, float)) else "") + (
        f"peak RSS {rss:.0f} MB, " if rss is not None else "") + f"trainable {c.trainable_params or 0:,}"
    served = rec.serving
    if served is not None and served.measured and isinstance(served.latency_p50_ms, (int, float)):
        cost += f", serving p50 {served.latency_p50_ms:.1f} ms"
    if rec.random_weights:
        return f"ok  random weights: time and memory only, {cost}"
    before = f" (untrained {rec.baseline.accuracy:.3f})" if rec.baseline and rec.baseline.accuracy is not None else ""
    ci = (m.ci or {}).get("accuracy")
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if isinstance(ci, list) and len(ci) == 2 else ""
    notes = "".join(f"; warning: {w}" for w in rec.warnings)  # e.g. a collapse to one class
    saved = rec.saved_model or {}
    if "path" in saved:
        notes += f"; model saved: {saved['path']} ({size_words(saved)}, {saved.get('save_s', 0):.1f} s)"
    return f"ok  accuracy {m.accuracy:.3f}{interval}{before}, balanced {m.balanced_accuracy:.3f}, {cost}{notes}"


def model_missing(results_dir, spec: RunSpec) -> bool:
    """--save-models on a run done before without it: it runs again, to keep its model this time."""
    return spec.save_models and not (model_folder(results_dir, spec.run_id) / CARD).is_file()  # written last


def kept_note(results_dir, spec: RunSpec, outcome: Outcome) -> str:
    """Where a run that did not finish left its record, when an ok record of the same run id stays."""
    if outcome.status == "ok" or not is_done(results_dir, spec.run_id):
        return ""
    return f"; the earlier ok record is kept, this attempt is in {attempt_path(record_path(results_dir, spec.run_id))}"


def _take(claim: Claim, wait: bool = False) -> bool:
    try:
        return claim.take(wait)
    except OSError as exc:
        raise ResultsUnwritable(f"cannot claim a run in {claim.path.parent.parent} ({exc.strerror or exc}); the "
                                "results folder is full or read-only: free space or pass --results-dir with a "
                                "writable folder, then rerun (finished runs are skipped)") from None


def _skipped(spec: RunSpec, results_dir, head: str, log, why: str | None = None) -> Outcome:
    o = Outcome(spec, "skipped", read_record(record_path(results_dir, spec.run_id)), 0.0)
    log(f"{head}: {why or describe(o)}")
    return o


def _written_after(results_dir, spec: RunSpec, started: float) -> bool:
    try:
        return record_path(results_dir, spec.run_id).stat().st_mtime >= started
    except OSError:
        return False
