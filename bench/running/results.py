"""From a run to its record: what every record has (`base_record`, also the record of a run that
failed or was cancelled) and the `ok` record built from a strategy's result (`run_record`): metrics
with intervals, the untrained and majority baselines, cost, FLOPs and MFU, warnings, predictions."""

from __future__ import annotations

import datetime as dt

from bench.core.record import ComparisonInfo, Cost, DatasetInfo, Metrics, ModelInfo, Record, StudyInfo
from bench.core.secrets import mask_secrets
from bench.running.config import RunSpec


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def base_record(spec: RunSpec, status: str, error: str | None = None) -> Record:
    """What every record has, whatever its status (failed runs carry no metrics)."""
    study = StudyInfo.from_dict(spec.study) if spec.study else None
    comparison = ComparisonInfo.from_dict(spec.comparison) if spec.comparison else None
    return Record(run_id=spec.run_id, status=status, error=mask_secrets(error), strategy=spec.strategy,
                  seed=spec.seed, eval_split=spec.eval_split, study=study, comparison=comparison,
                  model=ModelInfo(name=spec.model), dataset=DatasetInfo(name=spec.dataset), params=spec.params,
                  config=spec.to_dict(), train_size=spec.train_size, finished_at=now())


def run_record(spec: RunSpec, strategy, ctx, result, started: str, energy: dict | None = None) -> Record:
    """The `ok` record of a run whose strategy returned `result` on `ctx` (bench/engine/context.py);
    `energy` the energy keys of its cost (bench/engine/energy.py), where measured."""
    import numpy as np

    from bench.core.metrics import classification_metrics, collapse_warnings
    from bench.core.stats import bootstrap_intervals
    from bench.engine.env import environment
    from bench.engine.flops import utilization_figures

    data, labels, truth = ctx.data, ctx.data.labels, ctx.eval.labels
    metrics = classification_metrics(truth, result.predictions, labels)
    metrics["ci"] = bootstrap_intervals(truth, result.predictions, len(labels), seed=spec.seed)
    baseline = (classification_metrics(truth, result.baseline_predictions, labels)
                if result.baseline_predictions is not None else None)
    # what "always say the most frequent training class" scores: the floor on imbalanced data
    majority = int(np.bincount(data.train.labels, minlength=len(labels)).argmax())
    majority_baseline = classification_metrics(truth, [majority] * len(truth), labels)
    majority_baseline["predicted_class"] = labels[majority]
    cost = ctx.tracker.cost()
    cost.update(trainable_params=int(result.trainable_params), total_params=int(result.total_params),
                trainable_fraction=(result.trainable_params / result.total_params if result.total_params else None))
    # the strategy's own figures: the shared keys it measures (adapter_bytes, precision) in place,
    # the rest under cost.strategy, so no strategy can shadow a shared key by accident
    shared = set(Cost.__dataclass_fields__) - {"strategy", "extra"}
    cost.update({k: v for k, v in result.extra_cost.items() if k in shared})
    cost["strategy"] = {k: v for k, v in result.extra_cost.items() if k not in shared}
    cost.update(energy or {})
    cost.update(utilization_figures(strategy.flops_kind, ctx.model, cost, spec.device, spec.precision, len(labels)))
    rec = base_record(spec, "ok")
    rec.model, rec.dataset = ModelInfo.from_dict(ctx.model.record()), DatasetInfo.from_dict(data.record())
    rec.metrics, rec.cost = Metrics.from_dict(metrics), Cost.from_dict(cost)
    rec.baseline = Metrics.from_dict(baseline) if baseline is not None else None
    rec.majority_baseline = Metrics.from_dict(majority_baseline)
    rec.history, rec.env, rec.started_at = ctx.tracker.history, environment(spec.device), started
    rec.warnings = list(result.warnings) + collapse_warnings(truth, result.predictions, labels,
                                                             strategy.collapse_advice)
    rec.predictions, rec.truth = [int(x) for x in result.predictions], [int(x) for x in truth]
    return rec
