"""The HTML report from hand-made records: every section with real numbers, failed runs shown but
never averaged, the CSV, the Pareto front, escaping of hostile text, odd records, and a real
headless browser (skipped where Chromium is absent)."""

from __future__ import annotations

import csv
import math
import re
from pathlib import Path

import pytest

from bench.core.errors import BenchError
from bench.reporting import charts, summary, summary_tuning
from bench.reporting.report import render_report, summary_section
from tests.report_records import (
    CHROMIUM,
    FAILED_ERROR,
    HOSTILE,
    chromium,
    console_errors,
    fixture_records,
    not_finished_record,
    ok_record,
    text_of,
    trial_record,
    write_all,
)

SECTION_HEADINGS = ["Summary", "Accuracy against cost", "Before and after training", "Training curves",
                    "Per class", "Runs", "Environment", "Tuning"]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    folder = write_all(tmp_path_factory.mktemp("results"), fixture_records())
    (folder / "junk.json").write_text("{not json")  # unreadable: skipped, never fatal
    out = render_report(folder, tmp_path_factory.mktemp("reports") / "index.html")
    return out, out.read_text(encoding="utf-8")


def test_every_section_present_with_real_numbers(rendered):
    _, html = rendered
    for heading in SECTION_HEADINGS:
        assert f">{heading}</h2>" in html, heading
    text = text_of(html)
    assert "0.910 ± 0.014" in text  # full-ft accuracy over its two ok seeds (the oom seed excluded)
    assert "0.870 ± 0.014" in text and "0.510 ± 0.014" in text
    assert "22.7M (100%)" in text and "500.0k (0.37%)" in text
    assert "Peak memory (CPU peak RSS)" in text
    assert "105 s" in text  # full-ft mean train time
    assert not re.search(r"\bnan\b", text, re.I)
    assert "could not be built" not in text
    assert html.count("<svg") >= 3 + 1 + 1 + 2  # three cost charts, before/after, curves, tuning history + importances


def test_failed_and_oom_runs_listed_with_errors_not_averaged(rendered):
    out, html = rendered
    assert "ValueError: bitsandbytes cannot do 4-bit here; use --strategies lora" in html
    assert "CUDA out of memory. Tried to allocate 2.00 GiB &lt;on device 0&gt;" in html
    assert 'class="status-oom"' in html and 'class="status-failed"' in html
    rows = {r["strategy"]: r for r in csv.DictReader(out.with_suffix(".csv").open())}
    assert "qlora" not in rows  # only failed: no summary row
    assert rows["full-ft"]["n_seeds"] == "2" and rows["full-ft"]["seeds"] == "0,1"
    assert math.isclose(float(rows["full-ft"]["accuracy_mean"]), 0.91)


def test_csv_rows_and_columns(rendered):
    out, _ = rendered
    with out.with_suffix(".csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["strategy"], r["model"], r["dataset"]) for r in rows] == [
        ("full-ft", "minilm", "bbc-news"), ("lora", "smollm2", "bbc-news"), ("zero-shot", "smollm2", "bbc-news")]
    for column in ["n_seeds", "accuracy_mean", "accuracy_std", "balanced_accuracy_mean", "macro_f1_mean",
                   "trainable_params_mean", "trainable_pct", "memory_mb_mean", "memory_kind", "train_time_s_mean",
                   "total_time_s_mean", "train_examples_per_s_mean", "pareto_memory_mb"]:
        assert column in rows[0], column
    lora = rows[1]
    assert lora["n_seeds"] == "2"  # the tuning trials (also lora/smollm2) never enter the summary
    assert math.isclose(float(lora["accuracy_mean"]), 0.87) and lora["trainable_params_mean"] == "500000"
    assert lora["memory_kind"] == "peak_rss_mb"


def test_before_after_curves_per_class_environment(rendered):
    _, html = rendered
    text = text_of(html)
    assert "No untrained baseline for zero-shot" in text
    assert "+0.580" in text  # full-ft: 0.910 after, 0.330 before
    assert "No per-epoch history for zero-shot" in text
    assert "true \\ predicted" in text and "(2 seeds)" in text
    for value in ["3.11.7", "2.13.0+cpu", "5.23.0", "0.21.2", "0.50.2", "Test CPU", "abc1234"]:
        assert value in text


def test_tuning_section(rendered):
    _, html = rendered
    text = text_of(html)
    assert "Study lora-tune" in text
    assert "Best trial: #1" in text and "0.830" in text
    assert "1 pruned" in text and "3 complete" in text
    assert "Optuna fANOVA" in text or "importances not computed" in text
    assert "trial 2 of lora-tune" in text  # trials are listed among the runs too


def test_pareto_rows_in_text(rendered):
    _, html = rendered
    text = text_of(html)
    memory_line = re.search(r"by peak memory \(MB\):</strong>(.*?)</li>", html, re.S)
    assert memory_line and "full-ft" in memory_line.group(1)
    assert "zero-shot" not in memory_line.group(1)  # lora is cheaper in memory and more accurate
    assert "lora · smollm2: accuracy 0.870 at 900 MB" in text
    assert "zero-shot · smollm2: accuracy 0.510 at 0 trainable params" in text


def test_hostile_text_escaped_everywhere(rendered):
    _, html = rendered
    assert HOSTILE not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html.count("<script") == 1  # only the page's own sort script


def test_hostile_model_strategy_error_and_study_escaped(tmp_path):
    """Hostile text in every field a record supplies; `$` pairs in a name (mathtext for matplotlib
    unless escaped) must be drawn literally, not typeset or fail to parse."""
    rec = ok_record(HOSTILE, 0, 0.9, model=HOSTILE + "$x^{2$b\\", trainable=10, total=100, train_s=1.0,
                    memory_mb=10)
    rec["params"] = {"x": HOSTILE}
    trial = trial_record(0, "COMPLETE", 0.5, 1e-4, 8)
    trial["study"]["name"] = HOSTILE
    bad = not_finished_record("lora", 1, "failed", HOSTILE)
    out = render_report(write_all(tmp_path / "r", [rec, trial, bad]), tmp_path / "index.html")
    html = out.read_text()
    assert HOSTILE not in html and html.count("<script") == 1
    assert "could not be built" not in html


def test_pareto_front_membership():
    costs = [0, 10, 10, 5, 20, math.nan, 30]
    accs = [0.5, 0.9, 0.8, 0.9, 0.95, 0.99, 0.95]
    assert summary.pareto_front(costs, accs) == [True, False, False, True, True, False, False]
    assert summary.pareto_front([1, 1], [0.5, 0.5]) == [True, True]  # equal points: both optimal
    assert summary.pareto_front([], []) == []


def test_summary_table_pareto_columns():
    runs = summary.runs_frame(fixture_records())
    table = summary.summary_table(runs).set_index("strategy")
    assert table["pareto_trainable_params"].to_dict() == {"full-ft": True, "lora": True, "zero-shot": True}
    assert table["pareto_memory_mb"].to_dict() == {"full-ft": True, "lora": True, "zero-shot": False}
    assert table.loc["full-ft", "n_seeds"] == 2
    flags = summary.best_flags(table.reset_index())
    assert flags["accuracy"] == [True, False, False] and flags["memory_mb"] == [False, True, False]


def test_single_seed_std_is_absent_not_nan():
    runs = summary.runs_frame([ok_record("lora", 0, 0.9, trainable=10, total=100, train_s=1.0, memory_mb=10)])
    table = summary.summary_table(runs)
    section = summary_section(table)
    texts = [cell["text"] for cell in section["rows"][0]["cells"]]
    assert texts[0] == "0.900" and texts[4] == "10 MB" and texts[5] == "1.0 s"
    assert not any("nan" in t.lower() or "±" in t for t in texts)
    assert table["accuracy_std"].isna().all()  # the CSV leaves it empty


def test_importance_guard_with_one_complete_trial():
    runs = summary.runs_frame([trial_record(0, "COMPLETE", 0.7, 1e-4, 8), trial_record(1, "PRUNED", None, 1e-3, 4)])
    trials = summary_tuning.study_trials(runs)["lora-tune"]
    importances, note = summary_tuning.param_importances(trials)
    assert importances == {} and "at least 2 complete trials" in note


def test_hyperparameter_variants_are_not_averaged_together(tmp_path):
    records = [ok_record("lora", seed, acc, trainable=10, total=100, train_s=1.0, memory_mb=10)
               for seed, acc in [(0, 0.8), (1, 0.82)]]
    other = ok_record("lora", 0, 0.6, trainable=10, total=100, train_s=1.0, memory_mb=10)
    other.update(run_id="lora-0-lr3", params={"lr": 0.00019877829531090205, "epochs": 2})
    table = summary.summary_table(summary.runs_frame(records + [other]))
    # a tuned float is labelled to 4 significant digits
    assert table[["variant", "n_seeds"]].values.tolist() == [["lr=5e-05", 2], ["lr=0.0001988", 1]]


def test_only_failed_runs_still_render(tmp_path):
    records = [not_finished_record("qlora", 0, "failed", FAILED_ERROR), trial_record(0, "PRUNED", None, 1e-4, 8)]
    out = render_report(write_all(tmp_path / "r", records), tmp_path / "index.html")
    text = text_of(out.read_text())
    assert "No successful test-split runs yet" in text and FAILED_ERROR in text
    assert "could not be built" not in text and "No complete trial yet" in text


def test_no_records_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no run records in .*bench run"):
        render_report(tmp_path / "empty", tmp_path / "index.html")


def test_odd_records_do_not_crash(tmp_path):
    old = {"run_id": "old", "status": "ok", "strategy": "feature-extract", "metrics": {"accuracy": 0.8}}
    weird = {"run_id": "weird", "status": "ok", "strategy": "lora", "model": "m", "dataset": "d",
             "metrics": {"accuracy": "high", "per_class": [], "confusion": "?"}, "cost": [], "history": [None, 3],
             "env": None, "params": None, "baseline": {"accuracy": None}}
    nulls = ok_record("full-ft", 0, 0.9, trainable=None, total=None, train_s=0.0, memory_mb=None)
    nulls["history"] = [{"epoch": 1, "train_loss": None, "val_loss": None, "val_accuracy": None}]
    nulls["metrics"]["confusion"] = [[1, 2]]  # wrong shape: matrix left out
    cancelled = {"run_id": "c", "status": "cancelled", "error": None}
    out = render_report(write_all(tmp_path / "r", [old, weird, nulls, cancelled]), tmp_path / "index.html")
    html = out.read_text()
    assert "could not be built" not in html
    assert "feature-extract" in html and "cancelled" in html
    assert not re.search(r"\bnan\b", text_of(html), re.I)


def test_output_is_deterministic():
    """Same records, same bytes: fixed SVG hash salt, no dates in the SVG, a seeded fANOVA."""
    points = [{"label": "a", "strategy": "a", "cost": 0.0, "accuracy": 0.5, "accuracy_std": 0.01, "pareto": True},
              {"label": "b", "strategy": "b", "cost": 1e6, "accuracy": 0.9, "accuracy_std": math.nan, "pareto": True}]
    assert charts.cost_scatter(points, "params", True, "c") == charts.cost_scatter(points, "params", True, "c")
    trials = summary_tuning.study_trials(summary.runs_frame(fixture_records()))["lora-tune"]
    assert summary_tuning.param_importances(trials) == summary_tuning.param_importances(trials)


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_console_error_detection_works(tmp_path):
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>undefinedFunction();</script>")
    result = chromium(page, tmp_path / "profile", "--dump-dom")
    assert console_errors(result.stderr), result.stderr


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_report_in_headless_browser(rendered, tmp_path):
    out, _ = rendered
    result = chromium(out, tmp_path / "profile", "--dump-dom")
    assert result.returncode == 0, result.stderr
    assert not console_errors(result.stderr), console_errors(result.stderr)
    dom = result.stdout
    for heading in SECTION_HEADINGS:
        assert f">{heading}</h2>" in dom, heading
    assert "table.sortable" in dom and 'id="summary-table"' in dom
    assert len(re.findall(r'<td class="num[^"]*" data-value="[0-9.e+-]+"', dom)) >= 3 * 8
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom
    assert_click_sort_works(out, tmp_path)
    shot = chromium(out, tmp_path / "profile2", "--screenshot=/tmp/report_screenshot.png", "--window-size=1400,4000",
                    "--hide-scrollbars")
    assert shot.returncode == 0 and not console_errors(shot.stderr), shot.stderr
    assert Path("/tmp/report_screenshot.png").stat().st_size > 10_000


CLICK_PROBE = """<script>
// Test-only probe, appended to a scratch copy of the report: click the Accuracy header twice and
// record the row order after each click where --dump-dom can see it.
function order() { return Array.prototype.map.call(document.querySelectorAll("#summary-table tbody tr"),
                                                   function (r) { return r.cells[0].textContent; }).join(","); }
var header = Array.prototype.find.call(document.querySelectorAll("#summary-table thead th"),
                                       function (h) { return h.textContent.trim() === "Accuracy"; });
header.click(); document.body.setAttribute("data-probe-asc", order());
header.click(); document.body.setAttribute("data-probe-desc", order());
</script>"""


def assert_click_sort_works(report: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "probe.html"
    scratch.write_text(report.read_text().replace("</body>", CLICK_PROBE + "</body>"))
    result = chromium(scratch, tmp_path / "profile-probe", "--dump-dom")
    assert not console_errors(result.stderr), result.stderr
    assert 'data-probe-asc="zero-shot,lora,full-ft"' in result.stdout
    assert 'data-probe-desc="full-ft,lora,zero-shot"' in result.stdout
