"""The HTML comparison report: one self-contained file (inline CSS, SVG and a few lines of JS; it
opens offline) plus the summary table as CSV beside it.

    render_report("results/", "reports/index.html")  ->  reports/index.html, reports/index.csv

Data flow: records (bench.core.records) -> flat runs and aggregates (bench.reporting.summary) -> SVG charts
(bench.reporting.charts) -> display-ready context (here) -> Jinja2 template, autoescaped
(bench/reporting/templates/report.html.j2). Only our own SVG, and a run's details escaped here for
the <pre> they sit in (`run_details`), are marked safe; every other string from a record goes
through autoescaping.
"""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any, Callable

import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from bench.reporting import charts, details, report_trust, summary, summary_tuning
from bench.reporting.comparison_view import comparison_views
from bench.reporting.comparisons import comparison_blocks
from bench.reporting.formats import (missing, fmt_bytes, fmt_kwh, fmt_mean_std, fmt_ms, fmt_score, fmt_count, fmt_seconds,
                                     fmt_mb, fmt_rate, fmt_params, sort_value)
from bench.core.errors import BenchError
from bench.core.record import Record
from bench.core.records import iter_records
from bench.core.secrets import mask_secrets

NOT_FINISHED = ("failed", "oom", "cancelled")


def render_report(results_dir: str | Path, out_path: str | Path = "reports/index.html") -> Path:
    """Render every record under `results_dir` to `out_path` (HTML) and `<stem>.csv` beside it."""
    results_dir = Path(results_dir)
    skipped: list[str] = []  # files that are not usable records: named in the report and on stderr
    records = summary.dedupe(iter_records(results_dir, skipped))
    if not records:
        raise BenchError(f"no run records in '{results_dir}/'; run `bench run` first "
                         f"or pass the folder that holds them")
    runs = summary.runs_frame(records)
    table = summary.summary_table(runs)
    out = Path(out_path)
    html = template().render(**report_context(results_dir, records, runs, table, out.parent), skipped=skipped)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    table.to_csv(out.with_suffix(".csv"), index=False, float_format="%.10g")
    return out


def template():
    env = Environment(loader=PackageLoader("bench.reporting", "templates"), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2")


def report_context(results_dir: Path, records: list[Record], runs: pd.DataFrame, table: pd.DataFrame,
                   out_dir: Path = Path(".")) -> dict:
    labels = group_labeler(table)
    blocks = guarded(comparison_blocks, runs, labels)["data"]  # once: the summary and its section both read them
    return {
        "results_dir": str(results_dir),
        "overview": overview(runs),
        "summary": guarded(summary_section, table),
        "glance": guarded(glance_section, table, runs, labels, blocks),
        "data": guarded(report_trust.data_section, records, runs),
        "warnings": guarded(report_trust.warning_lines, records),
        "significance": guarded(report_trust.significance_section, runs, labels, blocks),
        "efficiency": guarded(report_trust.efficiency_section, table, labels),
        "cost": guarded(cost_section, table, labels),
        "before_after": guarded(before_after_section, table, runs, labels),
        "curves": guarded(curves_section, runs, labels),
        "per_class": guarded(per_class_section, runs, labels),
        "runs": guarded(runs_section, records, runs, record_links(results_dir, out_dir)),
        "environment": guarded(details.environment_values, records),
        "tuning": guarded(tuning_section, runs),
        "comparison": guarded(comparison_views, runs),
    }


def guarded(build: Callable, *args: Any) -> dict[str, Any]:
    """A section's content, or {"error": ...} so one odd record costs one section, not the report."""
    try:
        return {"error": None, "data": build(*args)}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}", "data": None}


# ---------------------------------------------------------------- labels

def group_labeler(table: pd.DataFrame) -> Callable[[Any], str]:
    """Label a group by its strategy, adding the model (and dataset, variant) only where the
    report holds several, so chart labels stay short."""
    several_models = table["model"].nunique() > 1
    several_datasets = table["dataset"].nunique() > 1
    several_sizes = table["train_size"].nunique() > 1

    def label(row: Any) -> str:
        text = str(row["strategy"])
        if several_models:
            text += f" · {row['model']}"
        if several_datasets:
            text += f" · {row['dataset']}"
        if several_sizes and row.get("train_size"):
            text += f" · train size {row['train_size']}"
        if row["variant"]:
            text += f" [{row['variant']}]"
        return text

    return label


def overview(runs: pd.DataFrame) -> dict[str, Any]:
    finished = [f for f in runs["finished_at"] if isinstance(f, str)]
    return {
        "n_runs": len(runs),
        "status_counts": runs["status"].value_counts().sort_index().to_dict(),
        "n_trials": int(runs["is_trial"].sum()),
        "datasets": sorted(runs["dataset"].unique()),
        "latest": max(finished) if finished else None,
    }


# ---------------------------------------------------------------- 1. summary table

SUMMARY_COLUMNS = [  # (figure, header, formatter of a mean/std)
    ("accuracy", "Accuracy", fmt_score),
    ("balanced_accuracy", "Balanced acc.", fmt_score),
    ("macro_f1", "Macro-F1", fmt_score),
    ("trainable_params", "Trainable params (% of total)", None),
    ("memory_mb", "Peak memory", fmt_mb),
    ("train_time_s", "Train time", fmt_seconds),
    ("total_time_s", "Total time", fmt_seconds),
    ("train_examples_per_s", "Train throughput (examples/s)", fmt_rate),
    ("latency_p50_ms", "Serving latency p50 (1 text)", fmt_ms),
    ("serve_throughput_per_s", "Serving throughput (texts/s)", fmt_rate),
    ("ship_total_bytes", "Bytes to ship", fmt_bytes),
    ("energy_kwh", "Energy", fmt_kwh),
]


def memory_kinds(table: pd.DataFrame) -> list[str]:
    """Names of the headline memory figures in the table (CPU peak RSS, GPU max allocated, ...)."""
    keys = sorted({k for joined in table["memory_kind"] for k in str(joined).split(",") if k})
    return [summary.MEMORY_KINDS.get(k, k) for k in keys]


def summary_section(table: pd.DataFrame) -> dict[str, Any]:
    best = summary.best_flags(table)
    kinds = memory_kinds(table)
    memory_header = f"Peak memory ({', '.join(kinds) or 'headline figure'})"
    headers = [memory_header if fig == "memory_mb" else header for fig, header, _ in SUMMARY_COLUMNS]
    rows = []
    for position, (_, row) in enumerate(table.iterrows()):
        cells = []
        for figure, _, fmt in SUMMARY_COLUMNS:
            mean, std = row[f"{figure}_mean"], row[f"{figure}_std"]
            text = (fmt_params(mean, row["trainable_pct"]) if figure == "trainable_params"
                    else fmt_mean_std(mean, std, fmt))
            interval = ""
            if figure in summary.QUALITY:
                interval = report_trust.fmt_interval(row[f"{figure}_ci_low"], row[f"{figure}_ci_high"])
            if figure == "energy_kwh" and text != "—" and bool(row.get("energy_estimated") == True):  # noqa: E712 (numpy bool)
                text += " (estimated)"
            if figure == "memory_mb" and len(kinds) > 1 and row["memory_kind"]:
                text += f" ({', '.join(summary.MEMORY_KINDS.get(k, k) for k in row['memory_kind'].split(','))})"
            cells.append({"text": text, "value": sort_value(mean), "best": best[figure][position],
                          "interval": interval, "interval_kind": row.get(f"{figure}_ci_kind", "") if interval else "",
                          "headline": figure == row["headline"]})
        rows.append({"strategy": row["strategy"], "model": row["model"], "dataset": row["dataset"],
                     "train_size": row["train_size"] or "all", "variant": row["variant"],
                     "n_seeds": int(row["n_seeds"]), "seeds": row["seeds"], "cells": cells})
    return {"headers": headers, "rows": rows, "show_variant": bool(table["variant"].astype(bool).any()),
            "show_size": bool(table["train_size"].astype(bool).any())}


def glance_section(table: pd.DataFrame, runs: pd.DataFrame, labels: Callable, blocks: list | None = None) -> list[str]:
    """Per dataset: the strategies the data cannot tell apart from the best (not one winner), what the
    best costs, then the faster rows on the train-time Pareto front."""
    tied, best = report_trust.tied_lines(runs, labels, blocks)
    lines = []
    for dataset, group in table.groupby("dataset", sort=True):
        group = group[group["train_size"] == group["train_size"].iloc[-1]]  # the full split, or the largest
        metric = str(group["headline"].iloc[0])
        scored = group[group["headline_mean"].notna()]
        if scored.empty:
            continue
        named = [i for i, r in scored.iterrows() if labels(r) == best.get(dataset)]  # the same best as below
        top = scored.loc[named[0] if named else scored["headline_mean"].idxmax()]
        name = report_trust.METRIC_NAMES[metric]
        interval = report_trust.fmt_interval(top[f"{metric}_ci_low"], top[f"{metric}_ci_high"])
        line = (f"{dataset}: highest {name} {labels(top)} "
                f"({fmt_mean_std(top[f'{metric}_mean'], top[f'{metric}_std'], fmt_score)}"
                f"{', 95% CI ' + interval if interval else ''}) with "
                f"{fmt_params(top['trainable_params_mean'], top['trainable_pct'])} trainable params, "
                f"{cost_text(top['train_time_s_mean'], fmt_seconds)} train time, "
                f"{cost_text(top['memory_mb_mean'], fmt_mb)} peak memory.")
        front = scored[scored["pareto_train_time_s"]].sort_values("train_time_s_mean")
        if len(front) > 1:
            line += " Faster on the train-time Pareto front: " + "; ".join(
                f"{labels(r)} ({fmt_score(r['headline_mean'])} in {cost_text(r['train_time_s_mean'], fmt_seconds)})"
                for _, r in front.iterrows() if r.name != top.name) + "."
        lines.append(line)
        lines += [f"Is the difference real? {t}" for t in tied.get(dataset, [])[-1:]]
    return lines


def cost_text(value: float, fmt: Callable[[float], str]) -> str:
    return "—" if missing(value) else fmt(value)


# ---------------------------------------------------------------- 2. accuracy against cost

COST_FORMATS = {"trainable_params": lambda n: f"{fmt_count(n)} trainable params", "train_time_s": fmt_seconds,
                "memory_mb": fmt_mb, "latency_p50_ms": lambda ms: f"{fmt_ms(ms)} per text (p50)",
                "ship_total_bytes": lambda n: f"{fmt_bytes(n)} to ship"}
LOG_AXES = ("trainable_params", "latency_p50_ms", "ship_total_bytes")  # spans of orders of magnitude


def cost_section(table: pd.DataFrame, labels: Callable) -> list[dict[str, Any]]:
    """Per dataset: one scatter per cost axis and the Pareto-optimal rows in words."""
    sections = []
    for d, (dataset, group) in enumerate(table.groupby("dataset", sort=True)):
        group = group[group["train_size"] == group["train_size"].iloc[-1]]  # full split, or the largest size
        chart_list, fronts = [], []
        metric = str(group["headline"].iloc[0])  # the figure the Pareto front was taken on
        for cost, cost_label in summary.COST_AXES.items():
            points = [{"label": labels(r), "strategy": r["strategy"], "cost": r[f"{cost}_mean"],
                       "accuracy": r[f"{metric}_mean"], "accuracy_std": r[f"{metric}_std"],
                       "pareto": bool(r[f"pareto_{cost}"])} for _, r in group.iterrows()]
            if cost in summary.SERVING_AXES and all(missing(p["cost"]) for p in points):
                continue  # records from before the serving measurement: no chart of dashes
            svg = charts.cost_scatter(points, cost_label, log_x=cost in LOG_AXES, chart_id=f"cost{d}-{cost}",
                                      y_label=f"test {report_trust.METRIC_NAMES[metric]}")
            missing_cost = [p["label"] for p in points if missing(p["cost"])]
            title = (f"Accuracy against serving cost: {cost_label}" if cost in summary.SERVING_AXES
                     else f"Accuracy vs {cost_label}")
            chart_list.append({"title": title, "svg": Markup(svg), "missing": missing_cost})
            front = sorted((p for p in points if p["pareto"]), key=lambda p: p["cost"])
            fronts.append({"axis": cost_label, "rows": [
                f"{p['label']}: {report_trust.METRIC_NAMES[metric]} {fmt_score(p['accuracy'])} at "
                f"{COST_FORMATS[cost](p['cost'])}" for p in front]})
        sections.append({"dataset": dataset, "charts": chart_list, "fronts": fronts})
    return sections


# ---------------------------------------------------------------- 3. before and after training

def before_after_section(table: pd.DataFrame, runs: pd.DataFrame, labels: Callable) -> dict[str, Any]:
    counted = runs[summary.summary_mask(runs)]
    groups = []
    for _, row in table.iterrows():
        mine = counted[(counted[summary.GROUP_KEYS] == row[summary.GROUP_KEYS]).all(axis=1)]
        baseline = mine["baseline_accuracy"].mean() if mine["baseline_accuracy"].notna().any() else math.nan
        majority = mine["majority_accuracy"].mean() if mine["majority_accuracy"].notna().any() else math.nan
        majority_bal = (mine["majority_balanced_accuracy"].mean() if mine["majority_balanced_accuracy"].notna().any()
                        else math.nan)
        trained = row["accuracy_mean"]
        groups.append({"label": labels(row), "baseline": baseline, "trained": trained,
                       "majority_text": cost_text(majority, fmt_score) + ("" if missing(majority_bal) else
                                                                         f" (balanced {fmt_score(majority_bal)})"),
                       "baseline_text": cost_text(baseline, fmt_score), "trained_text": cost_text(trained, fmt_score),
                       "gain_text": "—" if missing(baseline) or missing(trained) else f"{trained - baseline:+.3f}"})
    svg = charts.before_after_bars(groups, "beforeafter") if groups else None
    return {"svg": Markup(svg) if svg else None, "groups": groups,
            "no_baseline": [g["label"] for g in groups if missing(g["baseline"])]}


# ---------------------------------------------------------------- 4. training curves

def curves_section(runs: pd.DataFrame, labels: Callable) -> dict[str, Any]:
    curves, without = [], []
    for key, group in details.group_runs(runs):
        row = dict(zip(summary.GROUP_KEYS, key))
        frame = details.mean_history(group["history"])
        if frame.empty or frame[summary.CURVE_KEYS].isna().all().all():
            without.append(labels(row))
        else:
            curves.append({"label": labels(row), "strategy": row["strategy"], "frame": frame,
                           "n_seeds": len(group)})
    svg = charts.training_curves(curves, "curves") if curves else None
    return {"svg": Markup(svg) if svg else None, "without": without,
            "seed_counts": [(c["label"], c["n_seeds"]) for c in curves]}


# ---------------------------------------------------------------- 5. per class

def shade(fraction: float) -> str:
    """Background for a 0..1 cell (blue, stronger = higher); computed here, never from a record."""
    if missing(fraction):
        return ""
    alpha = max(0.0, min(1.0, float(fraction)))
    return f"background-color: rgba(31, 119, 180, {alpha * 0.85:.3f}); color: {'#fff' if alpha > 0.6 else '#111'}"


def per_class_section(runs: pd.DataFrame, labels: Callable) -> list[dict[str, Any]]:
    """Per dataset: a per-class F1 table (rows = groups) and each group's confusion matrix summed
    over seeds."""
    by_dataset: dict[str, dict[str, Any]] = {}
    for key, group in details.group_runs(runs):
        row = dict(zip(summary.GROUP_KEYS, key))
        class_names = next((l for l in group["labels"] if l), [])
        section = by_dataset.setdefault(row["dataset"], {"dataset": row["dataset"], "labels": class_names,
                                                         "f1_rows": [], "confusions": []})
        class_names = section["labels"]
        f1 = details.mean_per_class_f1(group["metrics"], class_names)
        section["f1_rows"].append({"label": labels(row), "cells": [
            {"text": cost_text(v, fmt_score), "style": shade(v)} for v in f1]})
        matrix = details.confusion_total(group["metrics"], len(class_names))
        section["confusions"].append({"label": labels(row), "n_seeds": len(group),
                                      "rows": confusion_rows(matrix, class_names) if matrix else None})
    return [by_dataset[k] for k in sorted(by_dataset)]


def confusion_rows(matrix: list[list[int]], class_names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for name, counts in zip(class_names, matrix):
        total = sum(counts)
        rows.append({"label": name, "cells": [
            {"text": str(c), "style": shade(c / total if total else math.nan)} for c in counts]})
    return rows


# ---------------------------------------------------------------- 6. runs

def runs_section(records: list[Record], runs: pd.DataFrame, links: Callable[[Record], str | None] = lambda r: None
                 ) -> dict[str, Any]:
    """Every run; tuning trials apart, in a table of their own with no inline detail (a comparison
    writes hundreds: each links to its record file instead). `links` gives a record's file as the
    page reaches it."""
    rows = [run_row(rec, run, links(rec)) for rec, (_, run) in zip(records, runs.iterrows())]
    rows.sort(key=lambda r: r["order"])
    not_finished = [r for r in rows if r["status"] in NOT_FINISHED]
    return {"rows": [r for r in rows if not r["is_trial"]], "trials": [r for r in rows if r["is_trial"]],
            "not_finished": not_finished, "invalid": [r for r in rows if r["invalid"]]}


def record_links(results_dir: Path, out_dir: Path) -> Callable[[Record], str | None]:
    """A record's file relative to the report's folder, where it sits under its run id."""
    import os

    def link(record: Record) -> str | None:
        path = results_dir / f"{record.run_id}.json"
        try:
            if not path.is_file():
                return None
        except OSError:  # a hand-edited run id no file system can name (too long): no link
            return None
        return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()

    return link


def run_details(record: Record) -> str:
    """What a run's row unfolds to: its config, environment and cost, compact; the split's row ids
    (the bulk of a record) only counted, they are in the record file."""
    whole = record.to_dict()
    details = {k: whole.get(k) for k in ("config", "env", "model", "dataset", "cost", "comparison", "warnings",
                                         "started_at", "finished_at")}
    if details["comparison"] is None:
        details.pop("comparison")
    ids = (details.get("dataset") or {}).get("split_ids")
    if isinstance(ids, dict):
        details["dataset"] = dict(details["dataset"], split_ids={
            k: f"{len(v)} row ids (in the record file)" if isinstance(v, list) else v for k, v in ids.items()})
    # masked: a record written before URLs were kept out of specs may still hold a password
    text = mask_secrets(json.dumps(without_nulls(details), indent=1, sort_keys=True, default=str))
    # escaped here, quotes kept: in a <pre>'s text only <, > and & mean anything, and a quote written
    # as &#34; (autoescape's way) would make the page's largest part a third bigger
    return Markup(html.escape(text, quote=False))


def without_nulls(value: Any) -> Any:
    """`value` with every null entry of a mapping left out (a figure not measured: the record has it)."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def run_row(record: Record, run: pd.Series, href: str | None = None) -> dict[str, Any]:
    # Text comes from the record itself: pandas turns a None among strings into NaN.
    split = run["eval_split"]
    if record.study is not None and record.study.name is not None:
        split = f"{split} · trial {record.study.trial} of {record.study.name}"
    elif record.comparison is not None and record.comparison.variant:
        split = f"{split} · {record.comparison.variant} of {record.comparison.name}"
    error = record.error
    seed = record.seed
    is_trial = bool(run["is_trial"])
    return {
        "order": (is_trial, run["strategy"], run["model"], run["dataset"], str(run["study"]),
                  summary.number(run["trial"]) if is_trial else summary.number(seed), run["run_id"]),
        "is_trial": is_trial, "href": href,
        "strategy": run["strategy"], "model": run["model"], "dataset": run["dataset"],
        "seed": "—" if seed is None else str(seed), "seed_value": sort_value(summary.number(seed)),
        "status": run["status"], "split": split, "variant": run.get("variant") or "",
        "params": ", ".join(f"{k}={v}" for k, v in run["params"].items()),
        "accuracy": ("random weights: time and memory only" if run.get("random_weights") is True
                     else cost_text(run["accuracy"], fmt_score)),
        "accuracy_value": sort_value(run["accuracy"]),
        "balanced_text": cost_text(run["balanced_accuracy"], fmt_score),
        "balanced_value": sort_value(run["balanced_accuracy"]),
        "time": cost_text(run["total_time_s"], fmt_seconds), "time_value": sort_value(run["total_time_s"]),
        "run_id": run["run_id"], "error": None if error is None else mask_secrets(str(error)),
        "invalid": "; ".join(run["invalid"]),  # impossible figures: shown, never counted
        "details": None if is_trial else run_details(record),
    }


# ---------------------------------------------------------------- 8. tuning

def tuning_section(runs: pd.DataFrame) -> list[dict[str, Any]]:
    studies = []
    for s, (name, trials) in enumerate(summary_tuning.study_trials(runs).items()):
        complete = trials[(trials["state"] == "COMPLETE") & trials["value"].notna()]
        objective = str(trials["objective"].iloc[0])
        history_svg = None
        if not complete.empty:
            values = complete["value"].tolist()
            history_svg = charts.optimization_history(complete["number"].tolist(), values,
                                                      summary_tuning.best_so_far(values), objective, f"study{s}-history")
        importances, note = summary_tuning.param_importances(trials)
        best = complete.loc[complete["value"].idxmax()] if not complete.empty else None
        studies.append({
            "name": name, "objective": objective,
            "strategies": sorted(trials["strategy"].unique()),
            "state_counts": trials["state"].value_counts().sort_index().to_dict(),
            "history_svg": Markup(history_svg) if history_svg else None,
            "importance_svg": Markup(charts.importance_bars(importances, f"study{s}-importance")) if importances else None,
            "importances": [(k, f"{v:.3f}") for k, v in importances.items()],
            "importance_note": note,
            "best": None if best is None else {"number": int(best["number"]), "value": fmt_score(best["value"]),
                                               "params": [(k, str(v)) for k, v in best["params"].items()],
                                               "run_id": best["run_id"]},
        })
    return studies
