"""No value in a record can stop the report, or cost it a section: every key of a full record (every
block, list and leaf) is set, in turn, to each of a set of hostile values (inf, NaN, negative and
absurd numbers, integers past any float, wrong types, huge text, deep nesting), and the report of all
those records together must render with every section built."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.core.metrics import classification_metrics
from bench.core.stats import bootstrap_intervals
from bench.reporting.report import render_report
from tests.report_records import fixture_records

HOSTILE = [None, True, 0, -1, 5.0, -0.5, math.inf, -math.inf, math.nan, 10**400, -(10**400), 2**63, 1e308,
           "", "x" * 5000, "<b>&", [], {}, [1, [2, [3]]], {"a": {"b": {"c": 1}}}, [math.inf, None, "a"],
           {"accuracy": math.nan}, [[1, 2], [3]]]


def full_record(strategy: str, seed: int) -> dict:
    """An ok record with every block the report reads: predictions, row ids, class counts, intervals."""
    labels = ["a", "b", "c"]
    truth = np.repeat([0, 1, 2], 20)
    pred = np.where(np.arange(60) % 5 == 0, (truth + 1) % 3, truth)
    metrics = classification_metrics(truth, pred, labels)
    metrics["ci"] = bootstrap_intervals(truth, pred, 3, seed=seed, n_resamples=50)
    counts = {"a": 20, "b": 20, "c": 20}
    return {
        "schema": 2, "run_id": f"{strategy}-{seed}", "status": "ok", "error": None, "strategy": strategy,
        "seed": seed, "eval_split": "test", "study": None, "train_size": None,
        "model": {"name": "m", "source": "/m", "provenance": "p", "architecture": "encoder"},
        "dataset": {"name": "d", "n_train": 60, "n_val": 30, "n_test": 60, "labels": labels, "notes": ["n"],
                    "split": {"mode": "per-class", "spec": "per-class:20,10,20", "seed": seed, "pool": ["all"]},
                    "class_counts": {"train": counts, "val": counts, "test": counts},
                    "split_ids": {"test": [str(i) for i in range(60)]}, "hygiene": {"duplicates_dropped": 1}},
        "params": {"lr": 1e-4, "epochs": 2}, "metrics": metrics,
        "baseline": classification_metrics(truth, np.zeros(60, dtype=int), labels),
        "majority_baseline": dict(classification_metrics(truth, np.zeros(60, dtype=int), labels), predicted_class="a"),
        "history": [{"epoch": 1, "train_loss": 1.0, "val_loss": 0.9, "val_accuracy": 0.5},
                    {"epoch": 2, "train_loss": 0.5, "val_loss": 0.7, "val_accuracy": 0.7}],
        "cost": {"peak_rss_mb": 500.0, "headline_memory": "peak_rss_mb", "trainable_params": 1000,
                 "total_params": 10_000, "trainable_fraction": 0.1,
                 "time_s": {"load": 1.0, "train": 10.0, "embed": 1.0, "eval": 1.0, "total": 13.0},
                 "train_examples_per_s": 6.0, "counters": {"train_examples": 60}, "strategy": {"pooling": "mean"}},
        "env": {"python": "3.11", "torch": "2", "device": "cpu"}, "config": {"strategy": strategy},
        "warnings": ["w"], "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:01:00Z",
        "predictions": [int(x) for x in pred], "truth": [int(x) for x in truth],
    }


def paths(obj, prefix=()):
    """Every key path of `obj`: blocks, lists and leaves (list items by index)."""
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else []
    for key, value in items:
        yield prefix + (key,)
        if isinstance(value, (dict, list)) and len(value) < 10:  # long id/prediction lists: the list, not each item
            yield from paths(value, prefix + (key,))


def mutated(base: dict, path: tuple, value) -> dict:
    rec = copy.deepcopy(base)
    where = rec
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = copy.deepcopy(value)
    return rec


def write_tampered(folder: Path, name: str, rec: dict) -> None:
    # as a hand edit or another tool writes it: Infinity and NaN allowed, huge integers kept
    (folder / f"{name}.json").write_text(json.dumps(rec, allow_nan=True))


BASES = [full_record("alpha", 0), full_record("beta", 0), full_record("alpha", 1)]
ALL_PATHS = list(paths(BASES[0]))


def test_the_sweep_covers_every_block():
    tops = {p[0] for p in ALL_PATHS}
    assert {"metrics", "cost", "dataset", "history", "predictions", "model", "seed"} <= tops
    assert len(ALL_PATHS) > 120


@pytest.mark.parametrize("batch", range(0, len(HOSTILE), 2))
def test_no_value_in_a_record_stops_the_report_or_a_section(tmp_path, batch):
    folder = tmp_path / "results"
    folder.mkdir()
    for rec in fixture_records():
        write_tampered(folder, str(rec["run_id"]), rec)
    for i, path in enumerate(ALL_PATHS):
        for shift in (batch, batch + 1):
            value = HOSTILE[(i + shift) % len(HOSTILE)]
            base = BASES[(i + shift) % len(BASES)]
            rec = mutated(base, path, value)
            if path != ("run_id",):
                rec["run_id"] = f"{base['run_id']}-{i}-{shift}"
            write_tampered(folder, f"m{i}-{shift}", rec)
    out = render_report(folder, tmp_path / "index.html")
    html = out.read_text()
    assert "This section could not be built" not in html, html[html.find("could not be built") - 200:][:600]
    assert "<b>&" not in html  # a record's text is escaped, whatever key it sits in
