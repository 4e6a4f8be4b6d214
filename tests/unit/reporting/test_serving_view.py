"""The serving measurement and energy in the report: the summary table's columns, "(estimated)" on
a modelled energy figure, the "Accuracy against serving cost" charts, and nothing shown as 0 for a
run that measured none."""

from __future__ import annotations

import math

from bench.reporting import summary
from bench.reporting.report import SUMMARY_COLUMNS, cost_section, summary_section
from tests.report_records import ok_record


def records():
    fast = ok_record("tfidf", 0, 0.90, trainable=250_000, total=250_000, train_s=4.0, memory_mb=500)
    fast["serving"] = {"measured": True, "latency_p50_ms": 1.2, "latency_p95_ms": 2.0, "throughput_per_s": 2500.0,
                       "rss_delta_mb": 0.5, "ship_total_bytes": 4_000_000, "ship_specific_bytes": 4_000_000}
    fast["cost"].update(energy_kwh=2.5e-5, energy_estimated=True, energy_basis="cpu: estimated from TDP x CPU load")
    slow = ok_record("lora", 0, 0.95, trainable=100_000, total=135_000_000, train_s=300.0, memory_mb=2000)
    slow["serving"] = {"measured": True, "latency_p50_ms": 80.0, "latency_p95_ms": 95.0, "throughput_per_s": 40.0,
                       "rss_delta_mb": 30.0, "ship_total_bytes": 540_000_000, "ship_specific_bytes": 400_000,
                       "merged": {"measured": True, "latency_p50_ms": 60.0}}
    slow["cost"].update(energy_kwh=3e-3, energy_estimated=False, energy_basis="cpu: RAPL")
    unserved = ok_record("full-ft", 0, 0.93, trainable=22_000_000, total=22_000_000, train_s=100.0, memory_mb=1500)
    unserved["serving"] = {"measured": False, "reason": "not measured: the strategy returned no served model"}
    return [fast, slow, unserved]


def cells_by_strategy(section) -> dict[str, dict[str, str]]:
    headers = section["headers"]
    return {row["strategy"]: {h: c["text"] for h, c in zip(headers, row["cells"])} for row in section["rows"]}


def test_the_summary_shows_latency_throughput_bytes_and_energy_marked_estimated():
    runs = summary.runs_frame(records())
    row = runs.set_index("strategy").loc["lora"]
    assert row["merged_latency_p50_ms"] == 60.0 and row["ship_specific_bytes"] == 400_000
    assert math.isnan(runs.set_index("strategy").loc["full-ft"]["latency_p50_ms"])  # not measured: no figure
    cells = cells_by_strategy(summary_section(summary.summary_table(runs)))
    assert cells["tfidf"]["Serving latency p50 (1 text)"] == "1.2 ms"
    assert cells["tfidf"]["Serving throughput (texts/s)"] == "2,500/s"
    assert cells["tfidf"]["Bytes to ship"] == "4.0 MB" and cells["lora"]["Bytes to ship"] == "540.0 MB"
    assert cells["tfidf"]["Energy"] == "0.025 Wh (estimated)" and cells["lora"]["Energy"] == "3 Wh"
    assert {cells["full-ft"][h] for _, h, _ in SUMMARY_COLUMNS[-4:]} == {"—"}  # dashes, never 0


def test_accuracy_against_serving_cost_charts_and_their_fronts():
    table = summary.summary_table(summary.runs_frame(records()))
    (section,) = cost_section(table, lambda r: r["strategy"])
    titles = [c["title"] for c in section["charts"]]
    assert "Accuracy against serving cost: serving latency p50 per text (ms)" in titles
    latency = section["charts"][titles.index("Accuracy against serving cost: serving latency p50 per text (ms)")]
    assert latency["missing"] == ["full-ft"]
    front = next(f for f in section["fronts"] if f["axis"].startswith("serving latency"))
    assert [r.split(":")[0] for r in front["rows"]] == ["tfidf", "lora"]  # fastest, then the most accurate


def test_records_from_before_the_serving_measurement_draw_no_serving_chart():
    old = [{k: v for k, v in r.items() if k != "serving"} for r in records()]
    (section,) = cost_section(summary.summary_table(summary.runs_frame(old)), lambda r: r["strategy"])
    assert not any("serving" in c["title"] for c in section["charts"])
