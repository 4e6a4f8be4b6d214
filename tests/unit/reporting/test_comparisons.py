"""The report's trust sections from hand-made records with real predictions: intervals in the
summary, every pair in "Is the difference real?", the tied set instead of one winner, the class
distribution, balanced accuracy as the headline on imbalanced data, and data-efficiency curves."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.metrics import classification_metrics
from bench.core.records import write_record
from bench.core.stats import bootstrap_intervals
from bench.reporting import comparisons, report_trust, summary
from bench.reporting.report import group_labeler, render_report

LABELS = ["a", "b", "c"]


def record(strategy, seed, truth, pred, ids, counts, train_size=None):
    metrics = classification_metrics(truth, pred, LABELS)
    metrics["ci"] = bootstrap_intervals(truth, pred, len(LABELS), seed=seed)
    majority = classification_metrics(truth, [0] * len(truth), LABELS)
    return {"schema": 1, "run_id": f"{strategy}-{seed}-{train_size}", "status": "ok", "error": None,
            "strategy": strategy, "seed": seed, "eval_split": "test", "study": None, "train_size": train_size,
            "model": {"name": "m"}, "params": {},
            "dataset": {"name": "d", "labels": LABELS, "split_ids": {"test": ids},
                        "split": {"mode": "stratified", "spec": "stratified:0.6,0.2,0.2", "seed": seed,
                                  "train_size": train_size},
                        "class_counts": {"train": counts, "val": counts, "test": counts}},
            "metrics": metrics, "baseline": None, "majority_baseline": majority, "history": [],
            "cost": {"trainable_params": 10, "total_params": 100, "peak_rss_mb": 100.0, "headline_memory": "peak_rss_mb",
                     "time_s": {"train": 1.0, "total": 2.0}},
            "truth": [int(x) for x in truth], "predictions": [int(x) for x in pred],
            "finished_at": "2026-01-01T00:00:00Z"}


def noisy(truth, accuracy, rng):
    return np.where(rng.random(len(truth)) < accuracy, truth, (truth + 1) % 3)


@pytest.fixture
def balanced_records():
    rng = np.random.default_rng(0)
    recs = []
    for seed in (0, 1):
        truth = np.repeat([0, 1, 2], 100)
        ids = [f"{seed}-{i}" for i in range(300)]
        counts = {"a": 100, "b": 100, "c": 100}
        recs += [record("strong", seed, truth, noisy(truth, 0.92, rng), ids, counts),
                 record("close", seed, truth, noisy(truth, 0.91, rng), ids, counts),
                 record("weak", seed, truth, noisy(truth, 0.70, rng), ids, counts)]
    return recs


def test_tied_set_and_verdicts(balanced_records):
    runs = summary.runs_frame(balanced_records)
    table = summary.summary_table(runs)
    [block] = comparisons.comparison_blocks(runs, group_labeler(table))
    assert block["metric"] == "accuracy" and len(block["pairs"]) == 3
    verdicts = {(p["a"], p["b"]): p["verdict"] for p in block["pairs"]}
    assert verdicts[("strong", "weak")] == "strong is better"
    assert verdicts[("close", "weak")] == "close is better"
    assert set(block["tied"]) == {"strong", "close"}
    assert (table["accuracy_ci_low"] >= 0).all() and (table["accuracy_ci_high"] <= 1).all()  # clipped t-intervals
    for pair in block["pairs"]:
        assert pair["difference"] >= 0  # A is the one ahead on the rows both ran
        assert pair["n_seeds"] == 2 and len(pair["per_seed"]) == 2 and pair["p_holm"] >= pair["p"]
        assert pair["ci"][0] <= pair["difference"] <= pair["ci"][1]


def test_report_shows_intervals_pairs_and_the_tied_set(tmp_path, balanced_records):
    for rec in balanced_records:
        write_record(tmp_path / "r" / f"{rec['run_id']}.json", rec)
    html = render_report(tmp_path / "r", tmp_path / "index.html").read_text()
    assert "Is the difference real?" in html and "statistically tied with it" in html
    assert html.count('class="ci"') == 9  # three groups x accuracy, balanced accuracy, macro-F1
    assert "McNemar" in html and "Holm" in html
    assert "Majority class" in html and "rank by accuracy" in html


def test_imbalanced_test_split_makes_balanced_accuracy_the_headline(tmp_path):
    rng = np.random.default_rng(3)
    truth = np.array([0] * 260 + [1] * 40 + [2] * 0)
    counts = {"a": 260, "b": 40, "c": 0}
    ids = [str(i) for i in range(300)]
    always_a = np.zeros(300, dtype=int)  # 0.867 accuracy, 0.5 balanced accuracy
    decent = np.where(rng.random(300) < 0.8, truth, 1 - truth)
    recs = [record("majority-like", 0, truth, always_a, ids, counts), record("decent", 0, truth, decent, ids, counts)]
    runs = summary.runs_frame(recs)
    assert summary.headline_metrics(runs) == {"d": "balanced_accuracy"}
    table = summary.summary_table(runs)
    assert table.loc[0, "strategy"] == "decent"  # ranked by balanced accuracy, not accuracy
    for rec in recs:
        write_record(tmp_path / "r" / f"{rec['run_id']}.json", rec)
    html = render_report(tmp_path / "r", tmp_path / "index.html").read_text()
    assert "rank by balanced accuracy" in html and "highest balanced accuracy decent" in html


def test_data_efficiency_curve(tmp_path):
    rng = np.random.default_rng(5)
    truth = np.repeat([0, 1, 2], 50)
    ids = [str(i) for i in range(150)]
    recs = []
    for size, acc in ((8, 0.6), (32, 0.8), (128, 0.9)):
        for seed in (0, 1):
            recs.append(record("s", seed, truth, noisy(truth, acc, rng), ids, {"a": 50, "b": 50, "c": 50}, size))
    for rec in recs:
        write_record(tmp_path / "r" / f"{rec['run_id']}.json", rec)
    html = render_report(tmp_path / "r", tmp_path / "index.html").read_text()
    assert 'id="efficiency"' in html and 'data-chart="efficiency-0"' in html
    assert "training rows per class" in html


def test_runs_on_other_seeds_are_not_comparable_and_nothing_is_claimed_about_them(tmp_path):
    """The best strategy on seed 1, the others on seed 0 (what --seeds used differently into one
    folder gives): no pair shares rows, so no significance is stated, only that they do not compare."""
    rng = np.random.default_rng(1)
    truth = np.repeat([0, 1, 2], 100)
    counts = {"a": 100, "b": 100, "c": 100}
    recs = [record("best", 1, truth, noisy(truth, 0.95, rng), [f"1-{i}" for i in range(300)], counts),
            record("other", 0, truth, noisy(truth, 0.60, rng), [f"0-{i}" for i in range(300)], counts),
            record("third", 0, truth, noisy(truth, 0.50, rng), [f"0-{i}" for i in range(300)], counts)]
    runs = summary.runs_frame(recs)
    [block] = comparisons.comparison_blocks(runs, group_labeler(summary.summary_table(runs)))
    line = report_trust.tied_line(block)
    assert "significantly" not in line and "Holm" not in line, line
    assert "not comparable: different seeds/splits: other, third" in line and "no difference is claimed" in line
    verdicts = {p["verdict"] for p in block["pairs"] if "best" in (p["a"], p["b"])}
    assert verdicts == {"not comparable: different seeds/splits"}
    # other and third share seed 0's rows: that pair alone is tested
    [tested] = [p for p in block["pairs"] if p.get("p") is not None]
    assert {tested["a"], tested["b"]} == {"other", "third"}
    for rec in recs:
        write_record(tmp_path / "r" / f"{rec['run_id']}.json", rec)
    html = render_report(tmp_path / "r", tmp_path / "index.html").read_text()
    assert "every other strategy is significantly worse" not in html


def test_a_tested_worse_and_an_untested_strategy_are_said_apart():
    rng = np.random.default_rng(2)
    truth = np.repeat([0, 1, 2], 100)
    counts = {"a": 100, "b": 100, "c": 100}
    same = [f"0-{i}" for i in range(300)]
    recs = [record("best", 0, truth, noisy(truth, 0.95, rng), same, counts),
            record("worse", 0, truth, noisy(truth, 0.50, rng), same, counts),
            record("elsewhere", 1, truth, noisy(truth, 0.40, rng), [f"1-{i}" for i in range(300)], counts)]
    runs = summary.runs_frame(recs)
    [block] = comparisons.comparison_blocks(runs, group_labeler(summary.summary_table(runs)))
    line = report_trust.tied_line(block)
    assert "significantly worse (Holm-corrected p < 0.05): worse" in line, line
    assert "every other strategy" not in line and "not comparable: different seeds/splits: elsewhere" in line


@pytest.mark.parametrize("path,value,flag", [
    (("metrics", "accuracy"), 5.0, "outside [0, 1]"),
    (("metrics", "balanced_accuracy"), float("inf"), "not a finite number"),
    (("cost", "time_s", "train"), -3.0, "outside [0, 1e+08]"),
    (("cost", "trainable_params"), 10**400, "too large"),
    (("cost", "peak_rss_mb"), -1.0, "outside"),
])
def test_an_impossible_figure_is_flagged_invalid_and_left_out_of_every_ranking(tmp_path, balanced_records,
                                                                             path, value, flag):
    import copy
    import json

    bad = copy.deepcopy(balanced_records[0])  # "strong", seed 0
    bad["run_id"] = "tampered"
    bad["strategy"] = "tampered"
    where = bad
    for key in path[:-1]:
        where = where[key]
    where[path[-1]] = value
    runs = summary.runs_frame(balanced_records + [bad])
    row = runs[runs["run_id"] == "tampered"].iloc[0]
    assert row["invalid"] and flag in row["invalid"][0], row["invalid"]
    table = summary.summary_table(runs)
    assert "tampered" not in set(table["strategy"])  # not in the means, the Pareto fronts or the tests
    labels = group_labeler(table)
    assert all("tampered" not in (p["a"], p["b"]) for b in comparisons.comparison_blocks(runs, labels)
               for p in b["pairs"])
    folder = tmp_path / "r"
    folder.mkdir()
    for rec in balanced_records + [bad]:  # as a user's tool would write it: JSON with Infinity allowed
        (folder / f"{rec['run_id']}.json").write_text(json.dumps(rec))
    html = render_report(folder, tmp_path / "index.html").read_text()
    assert "invalid: " in html and flag.split(" [")[0] in html and "This section could not be built" not in html
