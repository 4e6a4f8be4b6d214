"""Split modes (per-class, stratified, official), training-set sizes, and their clear errors."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from bench.core.errors import BenchError
from bench.data.sources import DatasetOptions, load_raw
from bench.data.splits import allocate, parse_split, parse_train_sizes
from bench.data.task import prepare
from bench.running.config import Experiment, RunSpec
from bench.running.plan import plan


def imbalanced_csv(tmp_path, n_big=261, n_small=39, extra=None):
    rows = [(f"big text number {i}", "ham") for i in range(n_big)] + [(f"small text {i}", "spam") for i in range(n_small)]
    rows += extra or []
    path = tmp_path / "imb.csv"
    pd.DataFrame(rows, columns=["text", "label"]).to_csv(path, index=False)
    return path


def test_stratified_keeps_every_class_share_and_uses_every_row(tmp_path):
    raw = load_raw(f"csv:{imbalanced_csv(tmp_path)}")
    data = prepare(raw, "stratified:0.6,0.2,0.2", seed=0)
    counts = {s: data.split(s).class_counts(data.labels) for s in ("train", "val", "test")}
    assert counts == {"train": {"ham": 157, "spam": 23}, "val": {"ham": 52, "spam": 8}, "test": {"ham": 52, "spam": 8}}
    ids = data.train.ids + data.val.ids + data.test.ids
    assert len(ids) == len(set(ids)) == 300
    again, other = prepare(raw, "stratified:0.6,0.2,0.2", seed=0), prepare(raw, "stratified:0.6,0.2,0.2", seed=1)
    assert again.test.ids == data.test.ids != other.test.ids
    rec = data.record()
    assert rec["split"]["mode"] == "stratified" and rec["split"]["spec"] == "stratified:0.6,0.2,0.2"
    assert rec["class_counts"]["test"] == {"ham": 52, "spam": 8}


def test_max_rows_caps_the_pool_keeping_shares(tmp_path):
    raw = load_raw(f"csv:{imbalanced_csv(tmp_path)}")
    data = prepare(raw, "stratified:0.5,0.25,0.25", seed=0, max_rows=100)
    total = {k: data.train.class_counts(data.labels)[k] + data.val.class_counts(data.labels)[k]
             + data.test.class_counts(data.labels)[k] for k in data.labels}
    assert total == {"ham": 87, "spam": 13}


def test_a_class_too_small_for_stratified_is_named_with_its_count(tmp_path):
    path = imbalanced_csv(tmp_path, extra=[("rare one", "abbr"), ("rare two", "abbr")])
    with pytest.raises(BenchError, match=r"class 'abbr' .* has 2 row\(s\); --split stratified:0.8,0.1,0.1 needs at "
                                         r"least 3 \(one in each split\)"):
        prepare(load_raw(f"csv:{path}"), "stratified:0.8,0.1,0.1", seed=0)


def test_per_class_error_points_to_stratified(tmp_path):
    raw = load_raw(f"csv:{imbalanced_csv(tmp_path)}")
    with pytest.raises(BenchError, match=r"class 'spam' .* has 39 rows .* --split stratified"):
        prepare(raw, (30, 5, 10), seed=0)


def test_official_split_column_with_validation_carved_from_train(tmp_path):
    rows = [(f"text {i}", "a" if i % 3 else "b", "train" if i < 60 else "test") for i in range(90)]
    path = tmp_path / "s.csv"
    pd.DataFrame(rows, columns=["text", "label", "part"]).to_csv(path, index=False)
    raw = load_raw(f"csv:{path}", DatasetOptions(split_col="part"))
    data = prepare(raw, "official", seed=0)
    assert sorted(data.test.ids, key=int) == [str(i) for i in range(60, 90)]  # the file's own test rows
    assert len(data.train) + len(data.val) == 60 and len(data.val) == 6  # 10% of each class of train
    assert not set(data.val.ids) & set(data.train.ids)
    assert data.record()["split"]["mode"] == "official"


def test_official_split_column_with_its_own_validation_rows(tmp_path):
    names = ["train"] * 40 + ["dev"] * 10 + ["test"] * 10
    rows = [(f"text {i}", "ab"[i % 2], part) for i, part in enumerate(names)]
    path = tmp_path / "s.jsonl"
    pd.DataFrame(rows, columns=["text", "label", "part"]).to_json(path, orient="records", lines=True)
    data = prepare(load_raw(f"jsonl:{path}", DatasetOptions(split_col="part")), "official", seed=0)
    assert (len(data.train), len(data.val), len(data.test)) == (40, 10, 10)


@pytest.mark.parametrize("values, message", [
    (["train", "holdout"], r"value\(s\) \['holdout'\] that name no split"),
    (["train", "train"], r"must mark both train and test rows"),
])
def test_bad_split_column_values(tmp_path, values, message):
    path = tmp_path / "s.csv"
    pd.DataFrame({"text": ["x", "y"], "label": ["a", "b"], "part": values}).to_csv(path, index=False)
    with pytest.raises(BenchError, match=message):
        load_raw(f"csv:{path}", DatasetOptions(split_col="part"))


def test_official_without_official_splits_is_a_clear_error():
    with pytest.raises(BenchError, match="no official test split"):
        prepare(load_raw("bbc-news"), "official", seed=0)


def test_train_sizes_are_nested_and_keep_validation_and_test(tmp_path):
    raw = load_raw("bbc-news")
    small, large = (prepare(raw, (40, 10, 20), seed=0, train_size=n) for n in (8, 32))
    assert np.bincount(small.train.labels).tolist() == [8] * 5
    assert set(small.train.ids) < set(large.train.ids)
    assert small.val.ids == large.val.ids and small.test.ids == large.test.ids
    with pytest.raises(BenchError, match=r"--train-sizes 64: class 'business' .* has 40 training rows"):
        prepare(raw, (40, 10, 20), seed=0, train_size=64)
    half = prepare(load_raw(f"csv:{imbalanced_csv(tmp_path)}"), "stratified:0.6,0.2,0.2", seed=0, train_size=0.5)
    assert half.train.class_counts(half.labels) == {"ham": 78, "spam": 12}  # round(157/2), round(23/2)


@pytest.mark.parametrize("text, expected", [
    ("per-class:60,20,40", ("per-class", (60, 20, 40))), ("60,20,40", ("per-class", (60, 20, 40))),
    ("stratified:0.8,0.1,0.1", ("stratified", (0.8, 0.1, 0.1))), ("official", ("official", ())),
])
def test_parse_split(text, expected):
    spec = parse_split(text)
    assert (spec.mode, spec.sizes) == expected


@pytest.mark.parametrize("text", ["stratified:0.8,0.3,0.1", "stratified:0,0.5,0.5", "stratified:a,b,c",
                                  "random:1,2,3", "official:1", "per-class:1,2"])
def test_bad_split_specs(text):
    with pytest.raises(BenchError, match="split|per-class"):
        parse_split(text)


def test_parse_train_sizes():
    assert parse_train_sizes("32,8,16") == [8, 16, 32]
    assert parse_train_sizes("0.5,0.1") == [0.1, 0.5]
    assert parse_train_sizes("1,2,4") == [1, 2, 4]  # counts throughout, not a fraction 1 among counts
    assert parse_train_sizes("0.5,1") == [0.5, 1.0]
    for bad in ("8,8", "0", "-1", "2.5", "x"):
        with pytest.raises(BenchError, match="--train-sizes"):
            parse_train_sizes(bad)


def test_allocation_sums_and_gives_every_split_a_row():
    assert allocate(10, (0.8, 0.1, 0.1)) == [8, 1, 1]
    assert allocate(3, (0.8, 0.1, 0.1)) == [1, 1, 1]
    assert sum(allocate(503, (0.6, 0.2, 0.2))) == 503


def test_plan_makes_one_run_per_size_and_keeps_earlier_run_ids(tmp_path):
    exp = Experiment(strategies=["feature-extract"], per_class=[20, 5, 10], seeds=[0, 1], train_sizes="4,8")
    specs = plan(exp)
    assert [(s.train_size, s.seed) for s in specs] == [(4, 0), (4, 1), (8, 0), (8, 1)]
    assert len({s.run_id for s in specs}) == 4
    # a spec without the new fields hashes as it did before they existed (records on disk stay "done")
    old = RunSpec("full-ft", "minilm", "bbc-news", {"text_cols": [], "label_col": None, "ag_news_dir": None},
                  [60, 20, 40], "pool", 0, {"lr": 1e-4}, "cpu")
    assert old.run_id == "678ac96d0e3811e6"  # computed on main before split modes
    # and after the dataset's own options moved under `source` (--data-opt): the same ids
    assert dataclasses.replace(old, dataset_options=DatasetOptions().to_dict()).run_id == "678ac96d0e3811e6"
    ag_old = dataclasses.replace(old, dataset="ag_news", dataset_options={**old.dataset_options, "ag_news_dir": "d"})
    ag_new = dataclasses.replace(ag_old, dataset_options=DatasetOptions(source={"dir": "d"}).to_dict())
    assert ag_new.run_id == ag_old.run_id
    with pytest.raises(BenchError, match="--split-col 'part' .* add --split official"):
        plan(Experiment(strategies=["feature-extract"], split_col="part", dataset=f"csv:{imbalanced_csv(tmp_path)}"))
    widened = plan(Experiment(strategies=["feature-extract"], train_sizes="8,128"))
    assert widened[0].per_class == [128, 20, 40]  # the default split's train part grows to the largest size
    with pytest.raises(BenchError, match="--max-rows"):
        plan(Experiment(strategies=["feature-extract"], max_rows=100))


def test_holding_out_test_rows_removes_them_and_their_duplicates_from_the_pool():
    from bench.data.task import RawDataset, hold_out_test_rows

    texts = [f"text {i}" for i in range(60)]
    pool = pd.DataFrame({"id": range(62), "text": texts + ["text  3", "text 4 "],  # whitespace twins of two rows
                         "label": ["a", "b"] * 31})
    raw = RawDataset("toy", pool, ["a", "b"])
    tests = [set(prepare(raw, "per-class:5,2,4", seed).test.texts) for seed in (0, 1)]
    kept = hold_out_test_rows(raw, "per-class:5,2,4", [0, 1])
    key = lambda t: " ".join(t.split())  # noqa: E731
    held = {key(t) for t in tests[0] | tests[1]}
    assert {key(t) for t in kept.pool["text"]}.isdisjoint(held)
    assert len(kept.pool) == len(pool) - sum(key(t) in held for t in pool["text"])
    tuning = prepare(kept, "per-class:5,2,4", 0)
    assert not ({key(t) for t in tuning.train.texts + tuning.val.texts} & held)


def test_a_run_scored_on_validation_gets_no_test_split():
    from bench.running.worker import prepare_data

    spec = RunSpec("feature-extract", "minilm", "bbc-news", DatasetOptions().to_dict(), [6, 2, 4], "pool", 0, {},
                   "cpu", eval_split="val")
    trial = prepare_data(spec)
    assert len(trial.test) == 0 and len(trial.val) == 10 and trial.record()["split_ids"]["test"] == []
    test = prepare_data(dataclasses.replace(spec, eval_split="test"))
    assert len(test.test) == 20 and test.val.ids == trial.val.ids
