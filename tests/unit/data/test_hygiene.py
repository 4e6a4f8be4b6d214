"""Data hygiene before any model loads: label spellings, duplicates, conflicting labels, near-duplicates
across splits, and which of a dataset's own splits a pool draws from."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.core.errors import BenchError
from bench.data.hygiene import merge_spellings, text_key
from bench.data.task import RawDataset, prepare


def frame(rows, prefix=""):
    return pd.DataFrame([{"id": f"{prefix}{i}", "text": t, "label": y} for i, (t, y) in enumerate(rows)])


def rows(n, labels=("a", "b"), tag=""):
    return [(f"text {tag}{i} about {labels[i % len(labels)]} number {i}", labels[i % len(labels)]) for i in range(n)]


def test_text_key_folds_case_unicode_punctuation_and_spacing():
    assert text_key("The  Grand Slam!") == text_key("the grand slam") == text_key("ＴＨＥ grand\nslam.")
    assert text_key("$100m share") == text_key("$100m-share")
    assert text_key("😀") != text_key("😢")  # a text of symbols alone keeps them


def test_labels_that_differ_by_case_or_spaces_are_one_error_naming_them():
    raw = RawDataset("t", frame([("x1", "spam"), ("x2", "spam "), ("x3", "Spam"), ("x4", "ham")] + rows(20)),
                     ["a", "b", "ham", "spam", "spam ", "Spam"])
    with pytest.raises(BenchError) as err:
        prepare(raw, (2, 1, 1), 0)
    msg = str(err.value)
    assert "'spam'" in msg and "'spam '" in msg and "'Spam'" in msg and "merge_labels=true" in msg


def test_merge_spellings_keeps_the_commonest_trimmed_spelling():
    df = frame([("a", "spam"), ("b", "spam"), ("c", "Spam "), ("d", "ham")])
    (out,), merged = merge_spellings([df])
    assert list(out["label"]) == ["spam", "spam", "spam", "ham"] and merged == {"spam": ["Spam ", "spam"]}


def test_conflicting_labels_are_counted_and_the_first_row_kept():
    pool = rows(40) + [("Buy cheap pills now", "a"), ("buy cheap pills NOW!", "b"), ("Buy cheap pills now", "a")]
    raw = RawDataset("t", frame(pool), ["a", "b"])
    data = prepare(raw, "stratified:0.5,0.25,0.25", 0)
    h = data.hygiene
    assert h["conflicts_dropped"] == 1 and h["duplicates_dropped"] == 1
    assert h["conflict_examples"][0]["labels"] == ["a", "b"] and "first row's label is kept" in h["conflict_rule"]
    everything = data.train.texts + data.val.texts + data.test.texts
    assert "buy cheap pills NOW!" not in everything and everything.count("Buy cheap pills now") == 1
    assert any("conflicting labels" in w for w in data.warnings)


def test_near_duplicates_across_splits_are_dropped_from_the_later_split_with_a_warning():
    train = rows(30, tag="tr")
    test = rows(10, tag="te") + [(t.upper(), y) for t, y in train[:4]] + [(train[5][0] + "!!", "a")]
    raw = RawDataset("t", frame(train + [(f"{t} (val)", y) for t, y in rows(6, tag="va")]), ["a", "b"],
                     test=frame(test, "test:"))
    data = prepare(raw, "official", 0)
    assert data.hygiene["near_duplicates_dropped"] == {"test": 5}
    assert len(data.test) == 10 and not {text_key(t) for t in data.test.texts} & {text_key(t) for t in data.train.texts}
    assert data.hygiene["conflicts_dropped"] == 1  # train[5] is "b": its copy in test says "a"
    assert data.hygiene["conflict_examples"][0]["labels"] == ["b", "a"]
    assert any("dropped from the later split: 5 from test" in w for w in data.warnings)


def test_a_stratified_pool_holds_every_split_and_per_class_says_what_it_left_out():
    raw = RawDataset("t", frame(rows(40, tag="tr")), ["a", "b"], test=frame(rows(20, tag="te")),
                     val=frame(rows(10, tag="va")))
    strat = prepare(raw, "stratified:0.6,0.2,0.2", 0)
    assert len(strat.train) + len(strat.val) + len(strat.test) == 70
    assert strat.how["pool"] == ["train", "validation", "test"] and "pool_left_out" not in strat.how
    ids = strat.train.ids + strat.val.ids + strat.test.ids
    assert len(set(ids)) == 70 and {i.split(":")[0] for i in ids} == {"train", "validation", "test"}
    per_class = prepare(raw, (5, 2, 5), 0)
    assert per_class.how["pool"] == ["train"] and per_class.how["pool_left_out"] == ["validation", "test"]
    official_test = prepare(raw, (5, 2, 5), 0, test_source="official")
    assert official_test.how["pool_left_out"] == ["validation"]
    plain = prepare(RawDataset("t", frame(rows(40)), ["a", "b"]), (5, 2, 5), 0)
    assert plain.how["pool"] == ["all"] and plain.warnings == []


def test_bbc_news_default_rows_hold_no_near_duplicates_across_splits():
    from bench.data.sources import load_raw

    data = prepare(load_raw("bbc-news"), (60, 20, 40), 0)
    assert data.notes == ["100 duplicate text(s) dropped before splitting"] and data.warnings == []
    assert data.hygiene["near_duplicates_dropped"] == {} and data.hygiene["conflicts_dropped"] == 0
    assert data.fingerprint() == "7063c20e48827bcb"  # the rows every earlier default run used
