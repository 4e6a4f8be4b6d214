"""The typed record: a round trip loses nothing, old schemas are upgraded, bad ones are refused."""

from __future__ import annotations

import json

import pytest

from bench.core.record import SCHEMA, Cost, Record, RecordError
from bench.core.records import iter_records, write_record


def full_record() -> dict:
    """A record as the worker writes it (every block), plus a key from a newer tool."""
    return {
        "run_id": "abc", "status": "ok", "schema": SCHEMA, "error": None, "strategy": "lora", "seed": 1,
        "eval_split": "test", "study": None,
        "model": {"name": "smollm2", "source": "/x", "provenance": "pkg", "architecture": "decoder"},
        "dataset": {"name": "bbc-news", "n_train": 3, "n_val": 1, "n_test": 2, "labels": ["a", "b"],
                    "provenance": "p", "notes": [], "split": {"mode": "per-class", "spec": "per-class:1,1,1"},
                    "class_counts": {"test": {"a": 1, "b": 1}}, "split_ids": {"test": [4, 5]}},
        "params": {"lr": 0.001}, "metrics": {"accuracy": 0.5, "balanced_accuracy": 0.5, "macro_f1": 0.33,
                                            "per_class": {"a": {"f1": 0.6}}, "confusion": [[1, 0], [1, 0]], "n": 2,
                                            "ci": {"accuracy": [0.0, 1.0]}},
        "baseline": None, "majority_baseline": {"accuracy": 0.5, "predicted_class": "a"},
        "history": [{"epoch": 1, "train_loss": 0.7}],
        "cost": {"peak_rss_mb": 900.0, "time_s": {"train": 2.0, "embed": 1.0, "total": 4.0}, "counters": {},
                 "trainable_params": 10, "total_params": 100, "adapter_bytes": 400,
                 "strategy": {"quantized_footprint_mb": 1.5}},
        "env": {"python": "3.11"}, "config": {"strategy": "lora"}, "train_size": None, "warnings": ["w"],
        "started_at": "t0", "finished_at": "t1", "predictions": [0, 0], "truth": [0, 1],
        "from_a_newer_tool": {"kept": True},
    }


def test_a_record_survives_the_round_trip_unchanged():
    data = full_record()
    rec = Record.from_dict(data)
    assert rec.odd == []
    assert rec.metrics.accuracy == 0.5 and rec.cost.adapter_bytes == 400 and rec.dataset.labels == ["a", "b"]
    assert rec.cost.train_seconds() == 3.0 and rec.cost.headline_memory_mb() == (900.0, "peak_rss_mb")
    again = rec.to_dict()
    assert missing(data, again) == []  # every key and value kept (declared keys absent before come back as null)
    assert Record.from_dict(json.loads(json.dumps(again))) == rec


def missing(expected, got, where="") -> list[str]:
    """Paths of `expected` that `got` lacks or holds with another value (None may be absent)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        return [p for k, v in expected.items()
                for p in (missing(v, got[k], f"{where}.{k}") if k in got else ([] if v is None else [f"{where}.{k}"]))]
    return [] if expected == got else [where]


def test_written_and_read_back_through_the_store(tmp_path):
    rec = Record.from_dict(full_record())
    write_record(tmp_path / "abc.json", rec)
    assert list(iter_records(tmp_path)) == [rec]


def test_a_schema_1_record_is_upgraded():
    """Schema 1: the strategy's own cost figures sat beside the shared ones; model/dataset could be bare names."""
    old = {"run_id": "old", "status": "ok", "strategy": "qlora", "model": "smollm2", "dataset": "bbc-news",
           "metrics": {"accuracy": 0.9, "balanced_accuracy": 0.88},
           "cost": {"peak_rss_mb": 1.0, "time_s": {"total": 1.0}, "adapter_bytes": 5, "quantized_footprint_mb": 2.0}}
    rec = Record.from_dict(old)
    assert rec.schema == SCHEMA and rec.model.name == "smollm2" and rec.dataset.name == "bbc-news"
    assert rec.cost.adapter_bytes == 5 and rec.cost.strategy == {"quantized_footprint_mb": 2.0}
    assert "quantized_footprint_mb" not in rec.cost.to_dict()


def test_values_of_the_wrong_type_are_read_as_not_measured_and_named():
    data = full_record()
    data["metrics"]["accuracy"] = "high"
    data["cost"] = []
    data["seed"] = True  # a bool is not a seed
    rec = Record.from_dict(data)
    assert rec.metrics.accuracy is None and rec.cost is None and rec.seed is None
    assert {"metrics.accuracy", "cost", "seed"} <= set(rec.odd)


@pytest.mark.parametrize("data,why", [
    ({"run_id": "x", "status": "finished"}, "unknown status 'finished'"),
    ({"run_id": "x"}, "lacks status"),
    ({"run_id": "x", "status": "ok", "schema": SCHEMA + 1}, "newer ftbench"),
    ([1, 2], "not a record object"),
])
def test_what_is_not_a_usable_record_is_refused_with_its_reason(data, why):
    with pytest.raises(RecordError, match=why):
        Record.from_dict(data)


def test_a_newer_schema_is_skipped_by_the_report_reader_not_fatal(tmp_path):
    (tmp_path / "new.json").write_text(json.dumps({"run_id": "n", "status": "ok", "schema": SCHEMA + 1}))
    write_record(tmp_path / "abc.json", Record.from_dict(full_record()))
    said = []
    assert [r.run_id for r in iter_records(tmp_path, warn=said.append)] == ["abc"]
    assert "newer ftbench" in said[0]


def test_every_cost_key_the_tracker_and_flops_write_is_declared():
    """A shared cost figure added without a field would silently land in `extra`."""
    from bench.engine.flops import utilization_figures
    from bench.engine.trackers import Tracker

    from types import SimpleNamespace

    from bench.engine.energy import EnergyMeter, figures

    written = set(Tracker().cost()) | set(utilization_figures("forward", "/nonexistent", {}, "cpu"))
    written |= set(utilization_figures("none", "/nonexistent", {}, "cpu")) | set(EnergyMeter().stop())
    parts = SimpleNamespace(duration=1.0, cpu_energy=1e-6, gpu_energy=0.0, ram_energy=1e-6)
    written |= set(figures(parts, {"cpu": ("RAPL", False), "ram": ("estimated", True)}, 1.0))
    assert written <= set(Cost.__dataclass_fields__)


def test_the_comparison_block_round_trips_and_is_absent_outside_a_comparison():
    data = full_record()
    assert "comparison" not in Record.from_dict(data).to_dict()  # records outside a comparison are unchanged
    block = {"name": "cmp-x", "budget": "trials:6", "role": "test", "variant": "tuned", "prefer": "memory",
             "study": "cmp-x-lora", "best_trial": 4, "holdout_seeds": None, "from_a_newer_tool": 1}
    rec = Record.from_dict({**data, "comparison": block})
    assert rec.comparison.variant == "tuned" and rec.comparison.best_trial == 4
    assert rec.comparison.extra == {"from_a_newer_tool": 1} and rec.to_dict()["comparison"] == block
    odd = Record.from_dict({**data, "comparison": {**block, "best_trial": "four"}})
    assert odd.comparison.best_trial is None and "comparison.best_trial" in odd.odd


def test_what_a_run_spent_by_its_own_clock():
    assert Cost(time_s={"train": 2.0, "eval": 1.0, "total": 4.5}).spent_seconds() == 4.5
    assert Cost(time_s={"train": 2.0, "eval": 1.0}).spent_seconds() == 3.0
    assert Cost().spent_seconds() is None
