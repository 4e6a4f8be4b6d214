"""One run, in its own process: `python -m bench.worker SPEC.json RECORD.json`.

Its own process gives clean peak-memory figures (VmHWM of this process alone), and a crash or an
out-of-memory kill cannot take the other runs down. The record is written here, atomically, for
every outcome this process lives to see; the parent writes it for the ones it does not."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import traceback

from bench.config import RunSpec
from bench.errors import BenchError, Pruned
from bench.records import SCHEMA, write_record


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def base_record(spec: RunSpec, status: str, error: str | None = None) -> dict:
    """The keys every record has, whatever its status (failed runs carry no metrics)."""
    return {"schema": SCHEMA, "run_id": spec.run_id, "status": status, "error": error,
            "strategy": spec.strategy, "seed": spec.seed, "eval_split": spec.eval_split,
            "study": ({k: v for k, v in spec.study.items() if k != "trial_id"} if spec.study else None),
            "model": {"name": spec.model}, "dataset": {"name": spec.dataset}, "params": spec.params,
            "metrics": None, "baseline": None, "majority_baseline": None, "history": [], "cost": None, "env": None,
            "config": spec.to_dict(), "train_size": spec.train_size, "started_at": None, "finished_at": now()}


def execute(spec: RunSpec, quiet: bool = False) -> dict:
    """Run the strategy and build the `ok` record; exceptions propagate to `main`."""
    import numpy as np
    import torch

    from bench.context import RunContext
    from bench.data import prepare
    from bench.datasets import DatasetOptions, load_raw
    from bench.env import environment
    from bench.metrics import classification_metrics
    from bench.stats import bootstrap_intervals
    from bench.models import resolve_model
    from bench.trackers import Tracker, cpu_threads
    from strategies import get_strategy

    torch.set_num_threads(cpu_threads())
    quiet_library_noise()
    if quiet:  # -q: transformers' own bars (weight loading) go too
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    started = now()
    on_epoch = None
    if spec.study:
        from bench.tune import epoch_reporter

        on_epoch = epoch_reporter(spec.study, spec.params.get("epochs"))
    tracker = Tracker(on_epoch=on_epoch, quiet=quiet)
    strategy = get_strategy(spec.strategy)
    params = strategy.Params(**spec.params)
    with tracker.phase("prepare"):
        data = prepare(load_raw(spec.dataset, DatasetOptions(**spec.dataset_options)), spec.split_spec(),
                       spec.seed, spec.test_from, spec.max_rows, spec.train_size)
    model = resolve_model(spec.model)
    ctx = RunContext(data, model, spec.seed, spec.device, tracker, spec.eval_split, spec.precision)
    result = strategy.run(ctx, params)
    truth = ctx.eval.labels
    metrics = classification_metrics(truth, result.predictions, data.labels)
    metrics["ci"] = bootstrap_intervals(truth, result.predictions, len(data.labels), seed=spec.seed)
    baseline = (classification_metrics(truth, result.baseline_predictions, data.labels)
                if result.baseline_predictions is not None else None)
    # what "always say the most frequent training class" scores: the floor on imbalanced data
    majority = int(np.bincount(data.train.labels, minlength=len(data.labels)).argmax())
    majority_baseline = classification_metrics(truth, [majority] * len(truth), data.labels)
    majority_baseline["predicted_class"] = data.labels[majority]
    cost = tracker.cost()
    cost.update(trainable_params=int(result.trainable_params), total_params=int(result.total_params),
                trainable_fraction=(result.trainable_params / result.total_params if result.total_params else None),
                adapter_bytes=None)
    cost.update(result.extra_cost)
    from bench.flops import utilization_figures  # FLOPs per token, peak FLOP/s, MFU (bench/flops.py)

    cost.update(utilization_figures(spec.strategy, model, cost, spec.device, spec.precision, len(data.labels)))
    rec = base_record(spec, "ok")
    rec.update(model=model.record(), dataset=data.record(), metrics=metrics, baseline=baseline,
               majority_baseline=majority_baseline, history=tracker.history, cost=cost,
               env=environment(spec.device), started_at=started,
               predictions=[int(x) for x in result.predictions], truth=[int(x) for x in truth])
    return rec


def quiet_library_noise() -> None:
    """Deprecation notices that libraries raise about each other's calls (peft calling
    transformers' renamed gradient-checkpointing API) say nothing a user can act on."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning, message=r".*(is_gradient_checkpointing|"
                            r"gradient_checkpointing_enable).*deprecated")
    warnings.filterwarnings("ignore", category=DeprecationWarning, message=r".*torch\.jit\.script_method")


def classify_failure(exc: BaseException) -> str:
    import torch

    if isinstance(exc, MemoryError) or isinstance(exc, getattr(torch, "OutOfMemoryError", ())):
        return "oom"
    return "oom" if "out of memory" in str(exc).lower() else "failed"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    spec_path, record_path = argv[0], argv[1]
    with open(spec_path) as fh:
        spec = RunSpec(**json.load(fh))
    quiet = os.environ.get("FTBENCH_QUIET") == "1"
    try:
        rec = execute(spec, quiet=quiet)
    except KeyboardInterrupt:
        write_record(record_path, base_record(spec, "cancelled", "interrupted (Ctrl-C) during the run"))
        return 130
    except Pruned as exc:
        write_record(record_path, base_record(spec, "pruned", str(exc) or "pruned by the tuner"))
        return 0
    except BenchError as exc:
        write_record(record_path, base_record(spec, "failed", str(exc)))
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BaseException as exc:  # noqa: BLE001 - every outcome gets a record
        status = classify_failure(exc)
        rec = base_record(spec, status, f"{type(exc).__name__}: {exc}".strip())
        rec["traceback"] = traceback.format_exc(limit=20)
        write_record(record_path, rec)
        traceback.print_exc()
        return 1
    write_record(record_path, rec)
    return 0


if __name__ == "__main__":
    sys.exit(main())
