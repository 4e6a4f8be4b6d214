"""The report's sections on how far its numbers can be trusted: the data each comparison rests
on (split mode, class distribution, headline figure), whether differences between strategies are
real (bench/reporting/comparisons.py), and data-efficiency curves (accuracy against training-set size)."""

from __future__ import annotations

import json
import math
from typing import Any, Callable

import pandas as pd
from markupsafe import Markup

from bench.core.record import Record
from bench.reporting import charts, summary
from bench.reporting.comparisons import comparison_blocks, fmt_p

METRIC_NAMES = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy", "macro_f1": "macro-F1"}


def fmt_interval(low: float, high: float) -> str:
    if low is None or high is None or math.isnan(low) or math.isnan(high):
        return ""
    return f"[{low:.3f}, {high:.3f}]"


def warning_lines(records: list[Record]) -> list[dict[str, str]]:
    """Each ok record's `warnings` (e.g. a collapse to one class), named by strategy, model, dataset and seed."""
    lines = []
    for rec in records:
        if rec.status != "ok" or not isinstance(rec.warnings, list):
            continue
        run = (f"{rec.strategy} [{summary.name_of(rec.model.name)}] on {summary.name_of(rec.dataset.name)}, "
               f"seed {rec.seed}")
        lines += [{"run": run, "text": str(note)} for note in rec.warnings]
    return lines


# ---------------------------------------------------------------- the data

def data_section(records: list[Record], runs: pd.DataFrame) -> list[dict[str, Any]]:
    """Per dataset and split: the mode, rows per class in train/val/test, and the headline figure."""
    headline = summary.headline_metrics(runs)
    seen: dict[tuple, dict[str, Any]] = {}
    for rec in records:
        dataset = summary.name_of(rec.dataset.name)
        how = rec.dataset.split or {}
        counts = rec.dataset.class_counts
        if not isinstance(counts, dict) or not isinstance(how, dict):
            continue
        # seeds that drew the same rows per class share one table
        key = (dataset, str(how.get("spec")), summary.size_label(how.get("train_size")),
               json.dumps(counts, sort_keys=True))
        item = seen.setdefault(key, {"dataset": dataset, "spec": str(how.get("spec") or "per-class"),
                                     "train_size": how.get("train_size"), "seeds": set(), "counts": counts,
                                     "notes": {}})
        item["seeds"].add(str(how.get("seed")))
        item["notes"].update(dict.fromkeys(data_notes(rec, how)))
    blocks: dict[str, dict[str, Any]] = {}
    order = sorted(seen.items(), key=lambda kv: (kv[0][0], kv[0][1], -summary.size_order(kv[0][2])))
    for (dataset, spec, size, _), item in order:
        block = blocks.setdefault(dataset, {"dataset": dataset, "splits": [], "metric": headline.get(dataset)})
        labels = list((item["counts"].get("train") or item["counts"].get("test") or {}).keys())
        rows = []
        for split in ("train", "val", "test"):
            c = item["counts"].get(split) or {}
            total = sum(c.values()) or 0
            rows.append({"split": split, "total": total, "cells": [
                f"{c.get(l, 0)} ({100 * c.get(l, 0) / total:.0f}%)" if total else "0" for l in labels]})
        test = item["counts"].get("test") or {}
        ratio = (max(test.values()) / min(test.values())) if test and min(test.values()) > 0 else math.nan
        seeds = sorted(item["seeds"], key=lambda x: (len(x), x))
        name = (f"{spec}, seed{'s' if len(seeds) > 1 else ''} {', '.join(seeds)}"
                + ("" if item["train_size"] is None else f", train size {item['train_size']}"))
        if len(block["splits"]) < 6:  # one table per split setting; seeds add little past a few
            block["splits"].append({"name": name, "labels": labels, "rows": rows, "notes": list(item["notes"]),
                                    "ratio": "—" if math.isnan(ratio) else f"{ratio:.1f}"})
    for block in blocks.values():
        metric = block["metric"] or "accuracy"
        block["metric_text"] = (
            f"the test split is imbalanced (largest class / smallest ≥ {summary.IMBALANCE_RATIO:g}), so comparisons "
            "rank by balanced accuracy (the mean of per-class recalls): accuracy there rewards predicting the "
            "large classes" if metric == "balanced_accuracy" else
            "the test split is balanced, so comparisons rank by accuracy")
    return [blocks[k] for k in sorted(blocks)]


def data_notes(rec: Record, how: dict) -> list[str]:
    """What the data hygiene found and did (the record's notes) and where a pool's rows came from."""
    notes = [str(n) for n in rec.dataset.notes] if isinstance(rec.dataset.notes, list) else (
        [rec.dataset.notes] if isinstance(rec.dataset.notes, str) else [])
    pool, left_out = how.get("pool"), how.get("pool_left_out")
    if isinstance(pool, list) and pool and pool != ["all"]:
        text = f"rows drawn from the dataset's {', '.join(map(str, pool))} split{'s' if len(pool) > 1 else ''}"
        if isinstance(left_out, list) and left_out:
            text += f"; its {', '.join(map(str, left_out))} split{'s' if len(left_out) > 1 else ''} left out"
        notes.append(text)
    return notes


# ---------------------------------------------------------------- is the difference real?

def significance_section(runs: pd.DataFrame, label: Callable, blocks: list | None = None) -> list[dict[str, Any]]:
    """`blocks`: comparison_blocks(runs, label) where the caller has them already (they are the
    report's costliest figures: a paired bootstrap per pair and seed)."""
    out = []
    for block in comparison_blocks(runs, label) if blocks is None else blocks:
        metric = METRIC_NAMES[block["metric"]]
        rows = []
        for pair in block["pairs"]:
            compared = pair.get("n_seeds", 0) > 0
            rows.append({
                "a": pair["a"], "b": pair["b"], "seeds": pair.get("n_seeds", 0),
                "difference": f"{pair['difference']:+.3f}" if compared else "—",
                "ci": fmt_interval(*pair["ci"]) if compared else "",
                "p": fmt_p(pair.get("p")), "p_holm": fmt_p(pair.get("p_holm")),
                "per_seed": "; ".join(f"seed {s['seed']}: {s['difference']:+.3f} {fmt_interval(*s['ci'])}, "
                                      f"McNemar p {fmt_p(s['mcnemar_p'])} ({s['only_a']} vs {s['only_b']} rows "
                                      "right for one only)" for s in pair.get("per_seed", [])),
                "t_p": fmt_p(pair.get("t_p")), "test": pair.get("test", ""),
                "verdict": pair["verdict"], "significant": pair["verdict"].endswith("is better"),
            })
        size = f", training-set size {block['train_size']}" if block["train_size"] else ""
        out.append({"title": f"{block['dataset']}{size}", "metric": metric, "rows": rows,
                    "line": tied_line(block), "tests": sorted({r["test"] for r in rows if r["test"]})})
    return out


def tied_line(block: dict[str, Any]) -> str:
    """The block's verdict in one sentence, claiming only what was tested: tied, significantly worse,
    and, apart, the strategies that could not be compared on the same rows."""
    metric = METRIC_NAMES[block["metric"]]
    others = [t for t in block["tied"] if t != block["best"]]
    worse, unknown = block.get("worse", []), block.get("unknown") or {}
    line = f"highest {metric}: {block['best']} ({block['best_mean']:.3f})"
    if others:
        line += (f"; statistically tied with it (Holm-corrected p ≥ 0.05): {', '.join(others)}: the data cannot "
                 "tell these apart")
    if worse:
        line += ("; every other strategy is significantly worse (Holm-corrected p < 0.05)" if not others and not unknown
                 else f"; significantly worse (Holm-corrected p < 0.05): {', '.join(worse)}")
    for why, names in unknown.items():
        line += f"; {why}: {', '.join(names)}"
    if unknown and not others and not worse:
        line += " (so no difference is claimed)"
    return line + "."


def tied_lines(runs: pd.DataFrame, label: Callable,
               blocks: list | None = None) -> tuple[dict[str, list[str]], dict[str, str]]:
    """Per dataset, the summary's sentences naming the tied set (one per training-set size, the full
    or largest last), and the best group's label at that last size."""
    lines: dict[str, list[str]] = {}
    best: dict[str, str] = {}
    for block in comparison_blocks(runs, label) if blocks is None else blocks:
        size = f" (training-set size {block['train_size']})" if block["train_size"] else ""
        lines.setdefault(block["dataset"], []).append(f"{block['dataset']}{size}: " + tied_line(block))
        best[block["dataset"]] = block["best"]
    return lines, best


# ---------------------------------------------------------------- data efficiency

def efficiency_section(table: pd.DataFrame, label: Callable) -> list[dict[str, Any]]:
    """Per dataset with two or more training-set sizes: the headline figure against size, per strategy."""
    sized = table[table["train_size"] != ""]
    out = []
    for dataset, block in sized.groupby("dataset", sort=True):
        if block["train_size"].nunique() < 2:
            continue
        metric = str(block["headline"].iloc[0])
        lines = []
        for key, group in block.groupby(["strategy", "model", "variant"], sort=True):
            group = group.assign(size=group["train_size"].astype(float)).sort_values("size")
            lines.append({"label": label(dict(zip(["strategy", "model", "variant"], key), dataset=dataset,
                                                  train_size="")),
                          "strategy": key[0], "sizes": group["size"].tolist(),
                          "means": group[f"{metric}_mean"].tolist(),
                          "lows": group[f"{metric}_ci_low"].tolist(), "highs": group[f"{metric}_ci_high"].tolist(),
                          "cells": [f"{m:.3f} {fmt_interval(lo, hi)}" for m, lo, hi in
                                    zip(group[f"{metric}_mean"], group[f"{metric}_ci_low"], group[f"{metric}_ci_high"])]})
        sizes = sorted({s for line in lines for s in line["sizes"]})
        fraction = all(s <= 1 for s in sizes)
        x_label = "training rows per class" if not fraction else "fraction of the train split"
        svg = charts.size_curves(lines, METRIC_NAMES[metric], x_label, f"efficiency-{len(out)}")
        out.append({"dataset": dataset, "metric": METRIC_NAMES[metric], "svg": Markup(svg), "x_label": x_label,
                    "sizes": [f"{s:g}" for s in sizes], "lines": [
                        {"label": l["label"], "cells": [l["cells"][l["sizes"].index(s)] if s in l["sizes"] else "—"
                                                        for s in sizes]} for l in lines]})
    return out
