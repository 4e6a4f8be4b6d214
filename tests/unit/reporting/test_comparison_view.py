"""The report of a `bench compare`, from hand-made records: the answer at the top (tied set and the
cheapest of it), the section's table (default against tuned, ranks, P(best), budget used, trial
states, validation spread), the tuning curves, a case where tuning changes the ranking and one where
it does not, and the summary table naming tuned and default rows instead of averaging them."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.stats import p_best
from bench.reporting import summary
from bench.reporting.comparison_view import comparison_views
from bench.reporting.report import render_report
from tests.report_records import comparison_run, comparison_trial, text_of, write_all

# (default right, tuned right, train seconds) of 60 test rows per seed
CHANGED = {"alpha": (36, 57, 50.0), "beta": (48, 49, 20.0), "gamma": (30, 33, 10.0)}
UNCHANGED = {"alpha": (54, 57, 50.0), "beta": (52, 56, 20.0), "gamma": (30, 33, 10.0)}


def records_for(table: dict, seeds=(0, 1)) -> list[dict]:
    records = []
    for strategy, (default, tuned, train_s) in table.items():
        for seed in seeds:
            records.append(comparison_run(strategy, seed, "default", default, train_s=train_s))
            records.append(comparison_run(strategy, seed, "tuned", tuned, best_trial=2, train_s=train_s))
        for number, (state, value) in enumerate([("COMPLETE", 0.70), ("PRUNED", None), ("COMPLETE", 0.85),
                                                 ("FAIL", None), ("CANCELLED", None)]):
            records.append(comparison_trial(strategy, number, state, value))
    return records


def view_of(records) -> dict:
    views = comparison_views(summary.runs_frame(records))
    assert len(views) == 1
    return views[0]


def rows_by_strategy(view) -> dict:
    return {r["strategy"]: r for r in view["rows"]}


def test_tuning_that_changes_the_ranking_is_said_so():
    view = view_of(records_for(CHANGED))
    rows = rows_by_strategy(view)
    assert rows["alpha"]["rank_change"] == "2 → 1 (up 1)" and rows["beta"]["rank_change"] == "1 → 2 (down 1)"
    assert rows["gamma"]["rank_change"] == "3 (=)"
    assert view["ranking_line"] == ("Mean test figure at defaults: beta > alpha > gamma; tuned: alpha > beta > gamma: "
                                    "tuning changed the ranking.")
    assert view["answer"] == ("Tuned with 4 trials each on bbc-news's validation split, alpha has the best test "
                              "accuracy (0.950), significantly ahead of every other tuned strategy (Holm-corrected "
                              "p < 0.05), at 50.0 s train time.")
    assert view["tied_lines"] == ["At defaults: best beta (0.800), every other significantly worse.",
                                  "Tuned: best alpha (0.950), every other significantly worse."]
    assert rows["alpha"]["default"] == "0.600" and rows["alpha"]["tuned"] == "0.950"
    assert rows["alpha"]["gain"] == "+0.350" and rows["alpha"]["tuned_ci"].startswith("[")
    assert view["p_best"]["alpha"] > 0.99 and view["p_best"]["gamma"] == 0.0


def test_tuning_that_keeps_the_ranking_names_the_tied_set_and_its_cheapest():
    view = view_of(records_for(UNCHANGED))
    assert view["ranking_line"].endswith("tuning did not change the ranking.")
    assert view["after"]["tied"] == ["alpha", "beta"]
    assert view["answer"] == ("Tuned with 4 trials each on bbc-news's validation split, alpha and beta are "
                              "statistically tied for the best test accuracy (best alpha, 0.950; Holm-corrected "
                              "p ≥ 0.05), and the cheapest of them by train time is beta (20.0 s).")
    chances = view["p_best"]
    assert chances["alpha"] > chances["beta"] > 0 and chances["gamma"] == 0
    assert sum(chances.values()) == pytest.approx(1.0)


def test_the_preference_stored_with_the_comparison_picks_the_cost():
    records = records_for(UNCHANGED)
    for rec in records:
        rec["comparison"]["prefer"] = "memory"
        if rec["strategy"] == "alpha":
            rec["cost"]["peak_rss_mb"] = 400.0
    view = view_of(records)
    assert view["answer"].endswith("the cheapest of them by peak memory is alpha (400 MB).")


def test_prefer_latency_names_the_tied_strategy_fastest_to_serve():
    records = records_for(UNCHANGED)
    for rec in records:
        rec["comparison"]["prefer"] = "latency"
        rec["serving"] = {"measured": True, "latency_p50_ms": 3.0 if rec["strategy"] == "alpha" else 40.0}
    view = view_of(records)
    assert view["answer"].endswith("the cheapest of them by serving latency (p50, one text) is alpha (3.0 ms).")


def test_budget_use_trial_states_and_validation_spread():
    row = rows_by_strategy(view_of(records_for(CHANGED)))["alpha"]
    # five trials: complete, pruned, complete, failed use budget (20 s each); the cancelled one does not
    assert row["budget_used"] == "4 of 4 trials (1 min 20 s of trial time)"
    assert row["states"] == {"COMPLETE": 2, "PRUNED": 1, "FAIL": 1} and row["cancelled"] == 1
    assert row["spread"].startswith("0.700–0.850 (range 0.150")
    assert row["params"] == [("lr", "0.001", "0.0001")] and row["best_trial"] == 2
    curve = row["curve"]
    assert curve["numbers"] == [0, 1, 2, 3] and curve["seconds"] == [20.0, 40.0, 60.0, 80.0]
    assert curve["best"] == [0.70, 0.70, 0.85, 0.85]


def test_only_the_newest_best_trials_tuned_runs_are_the_comparisons():
    records = records_for(UNCHANGED)
    # an earlier budget's best (trial 1) ran worse, and earlier
    records += [comparison_run("alpha", seed, "tuned", 40, best_trial=1, finished="00:30") for seed in (0, 1)]
    view = view_of(records)
    assert rows_by_strategy(view)["alpha"]["tuned"] == "0.950"
    runs = summary.runs_frame(records)
    table = summary.summary_table(runs)
    alpha = table[table["strategy"] == "alpha"].set_index("variant")
    assert sorted(alpha.index) == ["default", "tuned, trial 1", "tuned, trial 2"]
    assert (alpha["n_seeds"] == 2).all()  # never averaged together


def test_default_and_tuned_with_equal_params_are_still_two_rows_of_the_summary():
    records = records_for(UNCHANGED)
    for rec in records:
        rec["params"] = {"lr": 1e-4, "epochs": 2}
    table = summary.summary_table(summary.runs_frame(records))
    beta = table[table["strategy"] == "beta"]
    assert sorted(beta["variant"]) == ["default", "tuned, trial 2"] and (beta["n_seeds"] == 2).all()


def test_the_report_opens_with_the_answer_and_draws_the_section(tmp_path):
    folder = write_all(tmp_path / "results", records_for(UNCHANGED))
    html = render_report(folder, tmp_path / "index.html").read_text()
    text = text_of(html)
    header = text[:text.index("Summary")]
    assert "alpha and beta are statistically tied for the best test accuracy" in header and "P(best): alpha" in header
    assert "Comparison: each strategy at its best" in text and "could not be built" not in text
    assert 'data-chart="tuning-cmp-test"' in html
    assert "0.900 [" in text  # alpha's default mean over two seeds with its interval
    assert "tuned, trial 2" in text and "[default]" in text  # the summary says which rows are which
    assert "15 tuning trials" in text  # collapsed, apart from the test runs


def test_a_comparison_without_tuned_runs_yet_says_so():
    records = [r for r in records_for(UNCHANGED) if r["comparison"].get("variant") != "tuned"]
    view = view_of(records)
    assert view["answer"].startswith("Tuned with 4 trials each on bbc-news's validation split, no strategy has tuned "
                                     "test runs yet")
    assert view["no_tuned"] == ["alpha", "beta", "gamma"]


def test_p_best_by_bootstrap_over_seeds_then_rows():
    rng = np.random.default_rng(0)
    truth = [rng.integers(0, 3, 80) for _ in range(3)]
    flip = lambda t, p: np.where(rng.random(len(t)) < p, (t + 1) % 3, t)  # noqa: E731
    strong = [flip(t, 0.05) for t in truth]
    weak = [flip(t, 0.40) for t in truth]
    chances = p_best(truth, {"strong": strong, "weak": weak, "twin": [s.copy() for s in strong]}, "accuracy", 3)
    assert chances == {"strong": 0.5, "weak": 0.0, "twin": 0.5}  # identical predictions share every win
    close = [np.where(rng.random(len(s)) < 0.03, (s + 1) % 3, s) for s in strong]
    chances = p_best(truth, {"strong": strong, "close": close}, "accuracy", 3)
    assert 0.5 < chances["strong"] < 1 and chances["close"] > 0
    assert sum(chances.values()) == pytest.approx(1.0)
    again = p_best(truth, {"strong": strong, "close": close}, "accuracy", 3)
    assert again == chances  # seeded: the same report every time
    with pytest.raises(ValueError):
        p_best(truth, {"strong": strong[:2]}, "accuracy", 3)


def test_a_budget_this_version_cannot_read_is_shown_as_written():
    records = records_for(UNCHANGED)
    for rec in records:
        rec["comparison"]["budget"] = "epochs:40"
    view = view_of(records)
    assert view["budget"] == "epochs:40" and view["answer"].startswith("Tuned with budget 'epochs:40' each")
    assert rows_by_strategy(view)["alpha"]["budget_used"] == "4 trials (1 min 20 s of trial time)"
