"""One run, in its own process: `python -m bench.running.worker - RECORD.json` with the spec (JSON, one
line) on stdin, or `python -m bench.running.worker SPEC.json RECORD.json`.

Its own process gives clean peak-memory figures (VmHWM of this process alone), and a crash or an
out-of-memory kill cannot take the other runs down. The record is written here, atomically, for
every outcome this process lives to see; the parent writes it for the ones it does not.

Tied to its parent: the kernel sends it SIGKILL when the parent dies (PR_SET_PDEATHSIG), and it
exits when its stdin (a pipe from the parent) reaches EOF. SIGINT and SIGTERM both cancel the run:
a `cancelled` record, exit 130 or 143."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import traceback

from bench.running.config import RunSpec
from bench.running.results import base_record, now, run_record
from bench.core.errors import BenchError, Pruned, signal_words, stop_on_signal
from bench.core.plugins import load_plugins
from bench.core.record import Cost, Record
from bench.core.records import write_record
from bench.core.secrets import mask_secrets, register_url

EXIT_RECORD_UNWRITABLE = 3  # the record could not be written (read-only folder, disk full)


def execute(spec: RunSpec, quiet: bool = False, results_dir: str | None = None) -> Record:
    """Run the strategy; its `ok` record (with the model saved where the spec asks). Exceptions
    propagate to `main`."""
    import torch

    from bench.engine.context import RunContext
    from bench.engine.energy import EnergyMeter
    from bench.engine.models import resolve_model
    from bench.engine.trackers import Tracker, cpu_threads, reset_peak_rss
    from strategies import get_strategy

    torch.set_num_threads(cpu_threads())
    quiet_library_noise()
    load_plugins()  # $FTBENCH_PLUGINS: strategies and datasets registered from outside
    strategy = get_strategy(spec.strategy)
    if not strategy.uses_bitsandbytes:
        from bench.engine.four_bit import hide_bitsandbytes

        hide_bitsandbytes()
    if strategy.uses_model:  # as a forked worker has them: no run's clock counts these imports
        from bench.running.shared_imports import import_shared

        import_shared()
    if quiet:  # -q: transformers' own bars (weight loading) go too
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    # codecarbon's start (1-2 s of hardware probes) comes before the run's own clock starts; a tuning
    # trial skips it, as it skips serving: its test runs are measured, and a study runs dozens of trials
    meter = (EnergyMeter().start() if spec.eval_split == "test"
             else EnergyMeter.skipped("a tuning trial (scored on validation); its test runs are measured"))
    started = now()
    on_epoch = None
    if spec.study:
        from bench.running.study_storage import epoch_reporter

        on_epoch = epoch_reporter(spec.study, spec.params.get("epochs"))
    reset_peak_rss()  # the run's peak memory and its clock start together
    tracker = Tracker(on_epoch=on_epoch, quiet=quiet)
    _RUN["tracker"] = tracker
    params = strategy.Params(**spec.params)
    with tracker.phase("prepare"):
        data = prepare_data(spec)
    model = resolve_model(spec.model)
    ctx = RunContext(data, model, spec.seed, spec.device, tracker, spec.eval_split, spec.precision)
    result = strategy.run(ctx, params)
    energy = meter.stop()
    rec = run_record(spec, strategy, ctx, result, started, energy)
    rec.env["worker_start"] = os.environ.get("FTBENCH_WORKER_START", "fresh")  # bench/running/preloaded.py
    rec.serving = serving_block(result.served, ctx, spec)
    if spec.save_models:  # after serving, so the model card can say what it costs to serve
        keep_model(rec, result.served, results_dir or ".")
    return rec


def keep_model(rec: Record, served, results_dir) -> None:
    """--save-models, after the record is built: a failure is one error line and a warning; the record stays."""
    from bench.running.saved_models import save_run_model

    rec.saved_model = save_run_model(rec, served, results_dir)
    if "error" in rec.saved_model:
        print(f"error: {rec.saved_model['error']}", file=sys.stderr)
        rec.warnings.append(f"model not saved: {rec.saved_model['error']}")


def serving_block(served, ctx, spec: RunSpec):
    """The serving measurement of the trained result, after the record's cost was taken (its time
    and memory are the serving's own, in the `serving` block, not the run's); test runs only."""
    from bench.core.record import Serving
    from bench.engine.serving import SERVE_BATCH, measure

    if spec.eval_split != "test":  # a tuning trial: no reader uses it, and its test runs are measured
        return Serving(measured=False, reason="not measured: a tuning trial (scored on validation)")
    block = Serving.from_dict(measure(served, ctx.eval.texts, spec.serve_batch or SERVE_BATCH, spec.device))
    if block.measured:
        ctx.tracker.log(f"serving: {fmt_ms(block.latency_p50_ms)} p50 / {fmt_ms(block.latency_p95_ms)} p95 per text, "
                        f"{block.throughput_per_s or '?'} texts/s at batch {block.serve_batch}"
                        + (f" ({block.error})" if block.error else ""))
    return block


def fmt_ms(value) -> str:
    return "?" if value is None else f"{value:.1f} ms"


def prepare_data(spec: RunSpec):
    """The run's splits. A run scored on validation (a tuning trial) gets no test split at all, and
    draws its rows from a pool without the test rows of `holdout_seeds` (a comparison's test runs)."""
    from bench.data.sources import DatasetOptions, load_raw
    from bench.data.task import hold_out_test_rows, prepare

    raw = load_raw(spec.dataset, DatasetOptions(**spec.dataset_options))
    if spec.holdout_seeds:
        raw = hold_out_test_rows(raw, spec.split_spec(), spec.holdout_seeds, spec.test_from, spec.max_rows)
    data = prepare(raw, spec.split_spec(), spec.seed, spec.test_from, spec.max_rows, spec.train_size)
    return data if spec.eval_split == "test" else data.without_test()


# The run's tracker, once execute made it: a record written on the way out (failed, pruned,
# cancelled) still states the time the run spent, which a comparison's time budget adds up.
_RUN: dict = {}


def spent_cost(rec: Record) -> Record:
    """`rec` with the time (and peak memory) measured so far, where the run got as far as a tracker."""
    tracker = _RUN.get("tracker")
    if tracker is not None and rec.cost is None:
        measured = tracker.cost()
        rec.cost = Cost(**{k: measured[k] for k in ("time_s", "peak_rss_mb", "peak_gpu_allocated_mb",
                                                    "peak_gpu_reserved_mb", "headline_memory")})
    return rec


def quiet_library_noise() -> None:
    """Deprecation notices that libraries raise about each other's calls (peft calling
    transformers' renamed gradient-checkpointing API) say nothing a user can act on; neither does
    bitsandbytes' notice about a Hub-only kernel, which any strategy's first import of peft or
    transformers' optimizers can trigger."""
    import warnings

    from bench.engine.four_bit import silence_kernel_notice

    silence_kernel_notice()

    warnings.filterwarnings("ignore", category=FutureWarning, message=r".*(is_gradient_checkpointing|"
                            r"gradient_checkpointing_enable).*deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit\.script_method")


OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory", "unable to allocate")


def classify_failure(exc: BaseException) -> str:
    """oom for an allocation that failed (MemoryError, e.g. under RLIMIT_AS; torch's CPU and CUDA
    allocators' messages); failed for anything else."""
    import torch

    if isinstance(exc, MemoryError) or isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return "oom"
    text = str(exc).lower()
    return "oom" if any(m in text for m in OOM_MESSAGES) else "failed"


def tie_to_parent() -> None:
    """Die with the parent: PR_SET_PDEATHSIG (Linux), then make sure the parent did not die first."""
    parent = os.environ.get("FTBENCH_PARENT_PID")
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the stdin watch below still ties us
        pass
    if parent and os.getppid() != int(parent):  # it died before the prctl took
        os._exit(1)


def watch_stdin() -> None:
    """The parent keeps our stdin open while it lives: EOF means it is gone."""
    def watch() -> None:
        try:  # os.read, not sys.stdin: a daemon thread must hold no interpreter lock at exit
            while os.read(0, 65536):
                pass
        except OSError:
            pass
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def read_spec(arg: str) -> RunSpec:
    if arg == "-":  # one line of JSON on stdin, read unbuffered: the pipe stays ours to watch
        line = b""
        while not line.endswith(b"\n"):
            chunk = os.read(0, 1 << 16)
            if not chunk:
                os._exit(1)  # the parent went away before sending it all
            line += chunk
        return RunSpec(**json.loads(line))
    with open(arg) as fh:
        return RunSpec(**json.load(fh))


def finish(record_path: str, record: Record) -> int | None:
    """Write the record; None when written, the exit code when the folder would not take it."""
    from bench.core.records import strip_nonfinite

    rec, where = strip_nonfinite(record.to_dict())
    if where and rec["status"] == "ok":  # a NaN/inf figure is a broken run, not a result
        rec.update(status="failed", error=f"non-finite figure(s) at {', '.join(where[:5])}")
    try:
        write_record(record_path, rec)
    except OSError as exc:
        metrics = rec.get("metrics") or {}
        done = (f"the run finished (accuracy {metrics['accuracy']:.3f}) but " if rec["status"] == "ok"
                and isinstance(metrics.get("accuracy"), float) else "")
        print(f"error: {done}cannot write the record {record_path} ({exc.strerror or exc}); the results folder is "
              "full or read-only", file=sys.stderr)
        return EXIT_RECORD_UNWRITABLE
    return None


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_arg, record_path = argv[0], argv[1]
    tie_to_parent()
    from bench.running.study_storage import STORAGE_ENV

    register_url(os.environ.get(STORAGE_ENV))  # a tuning trial's storage password, masked verbatim
    spec = read_spec(spec_arg)
    if spec_arg == "-":
        watch_stdin()
    signal.signal(signal.SIGTERM, stop_on_signal)
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # as Python does: a background job keeps ignoring it
        signal.signal(signal.SIGINT, stop_on_signal)
    quiet = os.environ.get("FTBENCH_QUIET") == "1"
    try:
        rec = execute(spec, quiet=quiet, results_dir=os.path.dirname(os.path.abspath(record_path)))
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        return finish(record_path, spent_cost(base_record(spec, "cancelled", f"{signal_words(signum)} during "
                                                          "the run"))) or 128 + signum
    except Pruned as exc:
        return finish(record_path, spent_cost(base_record(spec, "pruned", str(exc) or "pruned by the tuner"))) or 0
    except BenchError as exc:
        print(f"error: {mask_secrets(str(exc))}", file=sys.stderr)
        return finish(record_path, spent_cost(base_record(spec, "failed", str(exc)))) or 1
    except BaseException as exc:  # noqa: BLE001 - every outcome gets a record
        status = classify_failure(exc)
        rec = spent_cost(base_record(spec, status, f"{type(exc).__name__}: {exc}".strip()))
        rec.traceback = mask_secrets(traceback.format_exc(limit=20))
        print(f"error: {rec.error} (the traceback is in the record, {record_path})",
              file=sys.stderr)
        return finish(record_path, rec) or 1
    return finish(record_path, rec) or 0


if __name__ == "__main__":
    sys.exit(main())
