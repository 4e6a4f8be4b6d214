"""A comparison's budget: parsing, what counts as used, and how its use is written."""

from __future__ import annotations

import pytest

from bench.core.budget import Budget, fmt_duration, parse_budget, used
from bench.core.errors import BenchError


@pytest.mark.parametrize("text, budget", [
    ("trials:6", Budget("trials", 6)), ("time:5m", Budget("time", 300)), ("time:90s", Budget("time", 90)),
    ("time:1h30m", Budget("time", 5400)), ("time:2.5m", Budget("time", 150)), (" trials:1 ", Budget("trials", 1)),
])
def test_budgets_parse(text, budget):
    assert parse_budget(text) == budget


def test_a_budget_is_written_one_way_whatever_its_spelling():
    assert parse_budget("time:5m").text() == parse_budget("time:300s").text() == "time:300s"
    assert parse_budget("trials:6").text() == "trials:6"


@pytest.mark.parametrize("text", ["trials:0", "trials:x", "trials", "time:", "time:5", "time:-5m", "time:5 min",
                                  "epochs:3", ""])
def test_a_bad_budget_is_one_clear_error(text):
    with pytest.raises(BenchError, match=r"use trials:N .* or time:DURATION"):
        parse_budget(text)


def test_what_counts_as_used():
    assert used([("ok", 10.0), ("pruned", 4.0), ("failed", 1.5), ("oom", 2.0),
                 ("cancelled", 30.0), (None, 5.0), ("refused", 0.0), ("ok", None)]) == (5, 17.5)


def test_met_and_the_words_for_its_use():
    trials, time = Budget("trials", 6), Budget("time", 300)
    assert not trials.met(5, 1e6) and trials.met(6, 0)
    assert not time.met(99, 299.9) and time.met(1, 300)
    assert trials.use_words(4, 125) == "4 of 6 trials (2 min 5 s of trial time)"
    assert time.use_words(7, 292) == "4 min 52 s of 5 min (7 trials)"
    assert time.use_words(3, 410) == "6 min 50 s of 5 min (3 trials; the last trial started within it and ran 1 min 50 s past)"
    assert fmt_duration(4000) == "1 h 6 min" and fmt_duration(12.4) == "12 s"
