"""Aggregation for the report: one flat row per run record, the summary per (strategy, model,
dataset) as mean ± std over seeds, the Pareto front, per-epoch curves, per-class F1, confusion
totals and environment values (tuning trials: bench/reporting/summary_tuning.py).

Records arrive typed (bench/core/record.py: a field of the wrong type is already None there); the
free-form parts (per-class figures, intervals, history entries) go through `dig`/`number`, so
missing or odd values yield NaN/None instead of crashing the report.
"""

from __future__ import annotations

import json
import math
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from bench.core.errors import echoed
from bench.core.record import Record

GROUP_KEYS = ["strategy", "model", "dataset", "train_size", "variant"]
QUALITY = ["accuracy", "balanced_accuracy", "macro_f1"]
IMBALANCE_RATIO = 1.5  # largest / smallest test class at or above this: balanced accuracy is the headline

# Headline memory keys a record may name, and how the report words them.
MEMORY_KINDS = {
    "peak_rss_mb": "CPU peak RSS",
    "peak_gpu_allocated_mb": "GPU max allocated",
    "peak_gpu_reserved_mb": "GPU max reserved",
}

# Figures averaged over seeds in the summary, and which direction is better.
SUMMARY_FIGURES = {
    "accuracy": "max",
    "balanced_accuracy": "max",
    "macro_f1": "max",
    "trainable_params": "min",
    "total_params": None,
    "memory_mb": "min",
    "train_time_s": "min",
    "total_time_s": "min",
    "train_examples_per_s": "max",
    # the serving measurement (record.Serving) and energy per run
    "latency_p50_ms": "min",
    "latency_p95_ms": "min",
    "serve_throughput_per_s": "max",
    "serve_memory_mb": "min",
    "ship_total_bytes": "min",
    "ship_specific_bytes": "min",
    "merged_latency_p50_ms": "min",
    "energy_kwh": "min",
}

# Cost axes of the accuracy-against-cost charts (the Pareto front is taken on each).
COST_AXES = {
    "trainable_params": "trainable parameters",
    "train_time_s": "train time (s)",
    "memory_mb": "peak memory (MB)",
    "latency_p50_ms": "serving latency p50 per text (ms)",
    "ship_total_bytes": "bytes to ship (from nothing)",
}
SERVING_AXES = ("latency_p50_ms", "ship_total_bytes")  # drawn as "Accuracy against serving cost"

ENV_KEYS = ["python", "torch", "transformers", "peft", "bitsandbytes", "device", "device_name",
            "cpu", "gpu", "threads", "git_commit"]

CURVE_KEYS = ["train_loss", "val_loss", "val_accuracy"]


# ---------------------------------------------------------------- safe readers

def dig(obj: Any, *keys: Any) -> Any:
    """obj[k1][k2]..., or None as soon as a level is missing or not a dict."""
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def number(value: Any) -> float:
    """A finite float or NaN: None, bools, strings, inf and integers too large for a float become NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return math.nan
    try:
        out = float(value)
    except OverflowError:
        return math.nan
    return out if math.isfinite(out) else math.nan


# What a figure can be; a record holding anything else (accuracy 5, inf, a negative time, 10**400
# parameters) is flagged invalid in the Runs table and left out of every mean, test and ranking.
MAX_COUNT, MAX_MB, MAX_SECONDS, MAX_RATE = 10**14, 10**9, 10**8, 10**12
VALID_RANGES = {
    "accuracy": (0, 1), "balanced_accuracy": (0, 1), "macro_f1": (0, 1), "baseline_accuracy": (0, 1),
    "majority_accuracy": (0, 1), "majority_balanced_accuracy": (0, 1),
    "trainable_params": (0, MAX_COUNT), "total_params": (0, MAX_COUNT), "memory_mb": (0, MAX_MB),
    "train_time_s": (0, MAX_SECONDS), "embed_time_s": (0, MAX_SECONDS), "total_time_s": (0, MAX_SECONDS),
    "train_examples_per_s": (0, MAX_RATE),
    "latency_p50_ms": (0, MAX_SECONDS * 1e3), "latency_p95_ms": (0, MAX_SECONDS * 1e3),
    "merged_latency_p50_ms": (0, MAX_SECONDS * 1e3), "serve_throughput_per_s": (0, MAX_RATE),
    "serve_memory_mb": (0, MAX_MB), "ship_total_bytes": (0, MAX_COUNT * 8), "ship_specific_bytes": (0, MAX_COUNT * 8),
    "energy_kwh": (0, 1e6),
}


def invalid_reason(value: Any, low: float, high: float) -> str | None:
    """Why a figure read from a record cannot be true, or None (absent values are merely missing)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    try:
        as_float = float(value)
    except OverflowError:
        return "too large to be a figure"
    if not math.isfinite(as_float):
        return "not a finite number"
    if not low <= as_float <= high:
        return f"outside [{low:g}, {high:g}]"
    return None


def invalid_figures(raw: dict[str, Any]) -> dict[str, str]:
    """The figures of `raw` (figure -> value as the record holds it) that cannot be true: {figure: why, in words}."""
    out = {}
    for figure, value in raw.items():
        why = invalid_reason(value, *VALID_RANGES[figure])
        if why:
            out[figure] = f"{figure} {echoed(value, 24)} ({why})"
    trainable, total = number(raw.get("trainable_params")), number(raw.get("total_params"))
    if not out and trainable > total:
        out["trainable_params"] = "trainable_params above total_params"
    return out


def name_of(value: Any) -> str:
    """The name of a model/dataset block (a dict with "name"), or the value itself as text."""
    if isinstance(value, dict):
        value = value.get("name")
    if value is None or value == "":
        return "?"
    return str(value)


def as_record(value: "Record | dict") -> Record:
    """A Record; a dict (a test's fixture, a notebook's JSON) is read through Record.from_dict."""
    return value if isinstance(value, Record) else Record.from_dict(value)


def labels_of(record: Record) -> list[str]:
    if record.dataset.labels:
        return [str(x) for x in record.dataset.labels]
    per_class = record.metrics.per_class if record.metrics else None
    return [str(x) for x in per_class] if isinstance(per_class, dict) else []


def params_key(params: Any) -> str:
    return json.dumps(params if isinstance(params, dict) else {}, sort_keys=True, default=str)


# ---------------------------------------------------------------- one flat row per run

def is_trial(record: Record) -> bool:
    """Tuning trials (a study block, or a non-test eval split) never enter the summary."""
    return record.study is not None or record.eval_split != "test"


def flatten(record: "Record | dict") -> dict[str, Any]:
    """The figures the report uses from one record."""
    record = as_record(record)
    cost = record.cost
    memory_mb, memory_key = cost.headline_memory_mb() if cost else (None, None)
    study = record.study
    # a model with random weights (random:NAME) measures time and memory; its accuracy is no result
    scored = not record.random_weights
    metrics = record.metrics if scored and record.metrics else None
    baseline = record.baseline if scored else None
    majority = record.majority_baseline
    time_s = cost.time_s if cost and isinstance(cost.time_s, dict) else {}
    raw = {"accuracy": metrics.accuracy if metrics else None,
           "balanced_accuracy": metrics.balanced_accuracy if metrics else None,
           "macro_f1": metrics.macro_f1 if metrics else None,
           "baseline_accuracy": baseline.accuracy if baseline else None,
           "majority_accuracy": majority.accuracy if majority else None,
           "majority_balanced_accuracy": majority.balanced_accuracy if majority else None,
           "trainable_params": cost.trainable_params if cost else None,
           "total_params": cost.total_params if cost else None,
           "memory_mb": getattr(cost, memory_key) if cost else None,
           "train_time_s": time_s.get("train"), "total_time_s": time_s.get("total"),
           "train_examples_per_s": cost.train_examples_per_s if cost else None,
           **serving_figures(record), "energy_kwh": cost.energy_kwh if cost else None}
    invalid = {**invalid_figures(raw), **invalid_figures({"embed_time_s": time_s.get("embed")})}
    row = {
        "run_id": record.run_id,
        "status": record.status,
        "error": record.error,
        "strategy": name_of(record.strategy),
        "model": name_of(record.model.name),
        "dataset": name_of(record.dataset.name),
        "seed": record.seed,
        "eval_split": record.eval_split or "test",
        "is_trial": is_trial(record),
        "study": study.name if study else None,
        "trial": study.trial if study else None,
        "trial_state": study.state if study else None,
        "objective": (study.objective if study else None) or "balanced_accuracy",
        "params": record.params,
        "params_key": params_key(record.params),
        "labels": labels_of(record),
        "random_weights": record.random_weights,
        "accuracy": number(metrics.accuracy if metrics else None),
        "balanced_accuracy": number(metrics.balanced_accuracy if metrics else None),
        "macro_f1": number(metrics.macro_f1 if metrics else None),
        "baseline_accuracy": number(baseline.accuracy if baseline else None),
        "majority_accuracy": number(record.majority_baseline.accuracy if record.majority_baseline else None),
        "majority_balanced_accuracy": number(record.majority_baseline.balanced_accuracy
                                             if record.majority_baseline else None),
        **{f"{m}_ci": interval(dig(metrics.ci if metrics else None, m)) for m in QUALITY},
        "train_size": size_label(record.train_size),
        "test_counts": test_counts(record),
        "truth": int_list(record.truth) if scored else None,  # no predictions: out of the significance tests too
        "predictions": int_list(record.predictions) if scored else None,
        "eval_key": eval_key(record),
        "metrics": metrics.to_dict() if metrics else {},
        "history": record.history if scored else [],
        "trainable_params": number(cost.trainable_params if cost else None),
        "total_params": number(cost.total_params if cost else None),
        "memory_mb": number(memory_mb),
        "memory_kind": memory_key if memory_mb is not None else None,
        "train_time_s": number(cost.train_seconds() if cost else None),
        "total_time_s": number(dig(cost.time_s, "total") if cost else None),
        "train_examples_per_s": number(cost.train_examples_per_s if cost else None),
        **{k: number(raw[k]) for k in SERVING_FIGURES},
        "energy_kwh": number(cost.energy_kwh if cost else None),
        "energy_estimated": cost.energy_estimated if cost else None,
        "energy_basis": cost.energy_basis if cost else None,
        "finished_at": record.finished_at,
        **protocol_fields(record),
        "invalid": list(invalid.values()),
    }
    for figure in invalid.keys() & row.keys():  # shown as missing; the Runs table says why
        row[figure] = math.nan
    if "embed_time_s" in invalid:
        row["train_time_s"] = math.nan
    return row


SERVING_FIGURES = ("latency_p50_ms", "latency_p95_ms", "serve_throughput_per_s", "serve_memory_mb",
                   "ship_total_bytes", "ship_specific_bytes", "merged_latency_p50_ms")


def serving_figures(record: Record) -> dict[str, Any]:
    """The serving block's figures a table shows (None where not measured): memory is the GPU
    allocator's peak on CUDA, else the resident set's growth while serving."""
    s = record.serving
    if s is None or not s.measured:
        return dict.fromkeys(SERVING_FIGURES)
    merged = s.merged if s.merged is not None and s.merged.measured else None
    return {"latency_p50_ms": s.latency_p50_ms, "latency_p95_ms": s.latency_p95_ms,
            "serve_throughput_per_s": s.throughput_per_s,
            "serve_memory_mb": s.peak_gpu_allocated_mb if s.peak_gpu_allocated_mb is not None else s.rss_delta_mb,
            "ship_total_bytes": s.ship_total_bytes, "ship_specific_bytes": s.ship_specific_bytes,
            "merged_latency_p50_ms": merged.latency_p50_ms if merged else None}


def protocol_fields(record: Record) -> dict[str, Any]:
    """Which `bench compare` a run belongs to, and as what (record.ComparisonInfo); None outside one."""
    c = record.comparison
    return {"comparison": c.name if c else None, "cmp_role": c.role if c else None,
            "cmp_variant": c.variant if c else None, "cmp_budget": c.budget if c else None,
            "cmp_prefer": c.prefer if c else None, "cmp_best_trial": c.best_trial if c else None,
            "cmp_study": c.study if c else None,
            "spent_s": number(record.cost.spent_seconds() if record.cost else None)}


def interval(value: Any) -> tuple[float, float] | None:
    if isinstance(value, (list, tuple)) and len(value) == 2:
        low, high = number(value[0]), number(value[1])
        if not (math.isnan(low) or math.isnan(high)):
            return low, high
    return None


def size_label(value: Any) -> str:
    """A training-set size as a group key: "" for the full split, else "8" or "0.25"."""
    v = number(value)
    return "" if math.isnan(v) else f"{v:g}"


def size_order(label: str) -> float:
    """Sort key of a training-set size label: by value, the full split ("") last."""
    return float(label) if label else math.inf


def int_list(value: Any) -> list[int] | None:
    if isinstance(value, list) and value and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return value
    return None


def eval_key(record: Record) -> str | None:
    """Which rows a run was evaluated on (its split's row ids): runs pair up only on equal keys."""
    ids = dig(record.dataset.split_ids, record.eval_split or "test")
    return json.dumps(ids) if isinstance(ids, list) and ids else None


def test_counts(record: Record) -> dict[str, int]:
    """Rows per class in the evaluated split: the record's class counts, else the per-class supports."""
    counts = dig(record.dataset.class_counts, record.eval_split or "test")
    if not isinstance(counts, dict):
        per_class = record.metrics.per_class if record.metrics else None
        counts = {k: dig(v, "support") for k, v in per_class.items()} if isinstance(per_class, dict) else {}
    return {str(k): int(v) for k, v in counts.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def is_imbalanced(counts: dict[str, int]) -> bool:
    values = [v for v in counts.values() if v > 0]  # a class absent from the test split ranks nothing
    return len(values) > 1 and max(values) / min(values) >= IMBALANCE_RATIO


def headline_metrics(runs: pd.DataFrame) -> dict[str, str]:
    """Per dataset, the figure comparisons rank by: balanced accuracy where the test split is
    imbalanced (accuracy there rewards predicting the big class), else accuracy."""
    out = {}
    for dataset, group in runs[summary_mask(runs)].groupby("dataset", sort=True):
        imbalanced = any(is_imbalanced(c) for c in group["test_counts"] if c)
        out[dataset] = "balanced_accuracy" if imbalanced else "accuracy"
    return out


def dedupe(records: Iterable["Record | dict"]) -> list[Record]:
    """One record per run (the last one read wins): a copy of a results folder inside another must
    not double-count seeds. Trials are keyed by (study, trial number), since two trials may share
    a configuration."""
    latest: dict[Any, Record] = {}
    for rec in map(as_record, records):
        if rec.study is not None and rec.study.trial is not None:
            key = ("trial", str(rec.study.name), str(rec.study.trial))
        else:
            key = ("run", rec.run_id)
        latest.pop(key, None)
        latest[key] = rec
    return list(latest.values())


def runs_frame(records: Iterable["Record | dict"]) -> pd.DataFrame:
    rows = [flatten(rec) for rec in dedupe(records)]
    frame = pd.DataFrame(rows)
    frame["variant"] = variants(frame)
    return frame


def variants(runs: pd.DataFrame) -> list[str]:
    """Where one (strategy, model, dataset) was run with several hyperparameter sets, name each set
    by the params that differ, so different settings are never averaged together. A comparison's
    test run is named by what it is instead (protocol_variant): tuned and default figures are never
    averaged together, nor shown without saying which they are."""
    out = [""] * len(runs)
    counted = runs[summary_mask(runs)]
    several = counted["comparison"].nunique() > 1 if "comparison" in counted else False
    for _, group in counted.groupby(["strategy", "model", "dataset"], sort=False):
        plain = group[group["cmp_variant"].isna()] if "cmp_variant" in group else group
        for idx, row in group.drop(plain.index).iterrows():
            out[runs.index.get_loc(idx)] = protocol_variant(row, several)
        if plain["params_key"].nunique() < 2:
            continue
        param_sets = list(plain["params"])
        varying = sorted({k for p in param_sets for k in p if any(q.get(k) != p.get(k) for q in param_sets)})
        for idx, params in zip(plain.index, param_sets):
            out[runs.index.get_loc(idx)] = ", ".join(f"{k}={short_value(params.get(k))}" for k in varying)
    return out


def protocol_variant(run: pd.Series, with_name: bool = False) -> str:
    """"default" or "tuned, trial 7" (the best trial whose parameters ran), and the comparison's name
    where the report holds several."""
    text = str(run["cmp_variant"])
    trial = number(run.get("cmp_best_trial"))
    if text == "tuned" and not math.isnan(trial):
        text += f", trial {trial:.0f}"
    return text + (f", {run['comparison']}" if with_name else "")


def short_value(value: Any) -> str:
    """A param as a label: tuned floats to 4 significant digits (lr=0.001988, not 0.0019877829531090205)."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def summary_mask(runs: pd.DataFrame) -> pd.Series:
    """Runs that enter the means: ok, on the test split, not a tuning trial, no impossible figure."""
    return (runs["status"] == "ok") & ~runs["is_trial"] & (runs["invalid"].map(len) == 0)


# ---------------------------------------------------------------- the summary table

def summary_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per (strategy, model, dataset, variant): n_seeds, seeds, <figure>_mean/_std for
    every SUMMARY_FIGURES entry, trainable_pct and memory_kind. std is NaN for a single seed."""
    counted = runs[summary_mask(runs)]
    rows = []
    for key, group in counted.groupby(GROUP_KEYS, sort=True):
        row = dict(zip(GROUP_KEYS, key))
        row["n_seeds"] = len(group)
        row["seeds"] = ",".join(sorted(str(s) for s in group["seed"]))
        for figure in SUMMARY_FIGURES:
            values = group[figure].astype(float)
            row[f"{figure}_mean"] = values.mean() if values.notna().any() else math.nan
            row[f"{figure}_std"] = values.std(ddof=1) if values.notna().sum() > 1 else math.nan
        for figure in QUALITY:
            row[f"{figure}_ci_low"], row[f"{figure}_ci_high"], row[f"{figure}_ci_kind"] = group_interval(group, figure)
        total = row["total_params_mean"]
        row["trainable_pct"] = 100.0 * row["trainable_params_mean"] / total if total > 0 else math.nan
        row["memory_kind"] = ",".join(sorted({k for k in group["memory_kind"] if isinstance(k, str) and k}))
        row["energy_estimated"] = bool(group["energy_estimated"].eq(True).any()) if "energy_estimated" in group else False
        rows.append(row)
    columns = GROUP_KEYS + ["n_seeds", "seeds"] + [f"{f}_{s}" for f in SUMMARY_FIGURES for s in ("mean", "std")]
    columns += [f"{f}_ci_{s}" for f in QUALITY for s in ("low", "high", "kind")]
    table = pd.DataFrame(rows, columns=columns + ["trainable_pct", "memory_kind", "energy_estimated"])
    # Best first within each dataset (and training-set size), by the dataset's headline figure.
    headline = headline_metrics(runs)
    table["headline"] = [headline.get(d, "accuracy") for d in table["dataset"]]
    table["headline_mean"] = [row[f"{row['headline']}_mean"] for _, row in table.iterrows()] if len(table) else []
    table["size_order"] = [size_order(v) for v in table["train_size"]]
    table = table.sort_values(["dataset", "size_order", "headline_mean"], ascending=[True, True, False],
                              na_position="last", kind="stable").reset_index(drop=True)
    return add_pareto_columns(table)


def group_interval(group: pd.DataFrame, figure: str) -> tuple[float, float, str]:
    """95% interval of a group's figure: the t-interval over seeds with two or more, else the one
    run's bootstrap interval over its test rows."""
    from bench.core.stats import t_interval

    values = [v for v in group[figure].astype(float) if not math.isnan(v)]
    across = t_interval(values)
    if across is not None:  # clipped: these figures live in [0, 1]
        return max(0.0, across[0]), min(1.0, across[1]), f"t-interval over {len(values)} seeds"
    ci = next((c for c in group[f"{figure}_ci"] if c), None)
    if ci is not None:
        return ci[0], ci[1], "bootstrap over test rows"
    return math.nan, math.nan, ""


def best_flags(table: pd.DataFrame) -> dict[str, list[bool]]:
    """Per figure, which rows hold the best mean (ties all marked); only with two or more rows."""
    flags = {}
    for figure, better in SUMMARY_FIGURES.items():
        values = table[f"{figure}_mean"].astype(float).to_numpy()
        finite = ~np.isnan(values)
        if better is None or finite.sum() < 2:
            flags[figure] = [False] * len(values)
            continue
        best = np.nanmax(values) if better == "max" else np.nanmin(values)
        flags[figure] = list(finite & np.isclose(values, best, rtol=1e-9, atol=0))
    return flags


# ---------------------------------------------------------------- Pareto front

def pareto_front(costs: Sequence[float], accuracies: Sequence[float]) -> list[bool]:
    """Which points no other point dominates (cost <= and accuracy >=, one of them strictly).
    Points with a missing cost or accuracy are never on the front; equal points are both on it."""
    points = [(number(c), number(a)) for c, a in zip(costs, accuracies)]
    front = []
    for i, (cost, acc) in enumerate(points):
        if math.isnan(cost) or math.isnan(acc):
            front.append(False)
            continue
        dominated = any(
            j != i and not (math.isnan(c) or math.isnan(a)) and c <= cost and a >= acc and (c < cost or a > acc)
            for j, (c, a) in enumerate(points)
        )
        front.append(not dominated)
    return front


def add_pareto_columns(table: pd.DataFrame) -> pd.DataFrame:
    """pareto_<cost> columns on the headline figure, the front taken within each dataset and
    training-set size (figures on different data do not compare)."""
    table = table.copy()
    for cost in COST_AXES:
        column = pd.Series(False, index=table.index, dtype=bool)
        for _, group in table.groupby(["dataset", "train_size"], sort=False):
            front = pareto_front(group[f"{cost}_mean"].tolist(), group["headline_mean"].tolist())
            column.loc[group.index] = front
        table[f"pareto_{cost}"] = column
    return table
