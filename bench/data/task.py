"""Prepared data: validation, hygiene (bench/data/hygiene.py) and deterministic splits (modes in
bench/data/splits.py).

A dataset source (bench/data/sources/) yields a `RawDataset` (a pool of rows with string labels, and
optionally an official test split); `prepare()` turns it into a `TaskData` with train/val/test
`Split`s of integer class ids. Every check here runs before any model loads."""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from bench.core.errors import BenchError, echoed
from bench.data.hygiene import Hygiene, check_label_spellings, deduplicate, drop_later_duplicates, text_key
from bench.data.splits import (SplitSpec, cap_rows, official_rows, parse_per_class, parse_split, per_class_rows,
                          stratified_rows, subsample_positions)

__all__ = ["RawDataset", "Split", "TaskData", "prepare", "parse_per_class", "validate_rows", "deduplicate",
           "hold_out_test_rows"]


@dataclass
class RawDataset:
    name: str
    pool: pd.DataFrame  # columns: id, text, label (labels as strings)
    labels: list[str]  # class names, in class-id order
    test: pd.DataFrame | None = None  # the dataset's own test split, where it has one
    provenance: str = ""
    val: pd.DataFrame | None = None  # the dataset's own validation split, where it has one
    labels_merged: dict[str, list[str]] = field(default_factory=dict)  # spellings a source merged on request


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray  # int64 class ids
    ids: list[str]  # row ids in the source, recorded so a split can be rebuilt and checked

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, positions: np.ndarray) -> "Split":
        return Split([self.texts[i] for i in positions], self.labels[positions], [self.ids[i] for i in positions])

    def class_counts(self, labels: list[str]) -> dict[str, int]:
        counts = np.bincount(self.labels, minlength=len(labels))
        return {name: int(n) for name, n in zip(labels, counts)}


@dataclass
class TaskData:
    name: str
    labels: list[str]
    train: Split
    val: Split
    test: Split
    provenance: str = ""
    notes: list[str] = field(default_factory=list)  # e.g. how many duplicates were dropped
    how: dict = field(default_factory=dict)  # the split mode and its settings (bench/data/splits.py)
    hygiene: dict = field(default_factory=dict)  # what bench/data/hygiene.py found and did
    warnings: list[str] = field(default_factory=list)  # of those, what to say before the run starts

    def split(self, name: str) -> Split:
        if name not in ("train", "val", "test"):
            raise ValueError(f"unknown split {name!r}")
        return getattr(self, name)

    def class_weights(self) -> np.ndarray:
        """Inverse class frequency on the train split, normalized to sum 1 (as in the seed)."""
        counts = np.bincount(self.train.labels, minlength=len(self.labels)).astype(float)
        w = np.where(counts > 0, 1.0 / np.maximum(counts, 1), 0.0)
        return w / w.sum()

    def fingerprint(self) -> str:
        """Identity of the prepared data (texts, labels and split), for caches keyed by data."""
        h = hashlib.sha256()
        for s in (self.train, self.val, self.test):
            for t, y in zip(s.texts, s.labels.tolist()):
                h.update(t.encode("utf-8", "replace"))
                h.update(f"\x00{y}\x01".encode())
            h.update(b"\x02")
        return h.hexdigest()[:16]

    def without_test(self) -> "TaskData":
        """The same data with an empty test split: what a run that evaluates on validation (a tuning
        trial) is given, so no strategy can look at a test row there."""
        empty = Split([], np.zeros(0, dtype=np.int64), [])
        return dataclasses.replace(self, test=empty)

    def record(self) -> dict:
        return {"name": self.name, "n_train": len(self.train), "n_val": len(self.val),
                "n_test": len(self.test), "labels": list(self.labels), "provenance": self.provenance,
                "notes": self.notes, "split": self.how, "hygiene": self.hygiene,
                "class_counts": {name: self.split(name).class_counts(self.labels) for name in ("train", "val", "test")},
                "split_ids": {"train": self.train.ids, "val": self.val.ids, "test": self.test.ids}}


def validate_rows(df: pd.DataFrame, source: str) -> None:
    """Empty data, non-string or empty texts, missing labels: one clear error each."""
    if len(df) == 0:
        raise BenchError(f"dataset '{source}' has no rows; check the file or the column names")
    bad = [i for i, t in zip(df["id"], df["text"]) if not isinstance(t, str) or not t.strip()]
    if bad:
        raise BenchError(f"dataset '{source}' has {len(bad)} empty or non-string text(s) (first at row "
                         f"{bad[0]}); drop or fill those rows, or pick another --text-col")
    missing = df["label"].isna()
    if missing.any():
        raise BenchError(f"dataset '{source}' has {int(missing.sum())} row(s) with no label (first at row "
                         f"{df['id'][missing].iloc[0]}); drop them or pick another --label-col")


def prepare(raw: RawDataset, split: "SplitSpec | str | Sequence[int]", seed: int, test_source: str = "pool",
            max_rows: int | None = None, train_size: int | float | None = None) -> TaskData:
    """Check the rows (bench/data/hygiene.py: label spellings, duplicates, conflicting labels), then split
    by `split` (bench/data/splits.py: per-class counts, stratified fractions or the dataset's official
    splits), shuffled with `seed`, and drop from a later split what an earlier one holds. A stratified
    pool holds every split of the dataset's own; per-class draws from its train split (its other
    splits are left out, and the record says so). `test_source="official"` (per-class mode) samples
    the test rows from the dataset's own test split; `max_rows` caps the pool keeping class shares;
    `train_size` then keeps that many training rows per class (or that fraction)."""
    spec = parse_split(split)
    validate_rows(raw.pool, raw.name)
    if test_source not in ("pool", "official"):
        raise BenchError(f"--test-from {echoed(test_source)}: use 'pool' or 'official'")
    if test_source == "official" and spec.mode != "per-class":
        raise BenchError(f"--test-from official goes with --split per-class; --split {spec.text()} "
                         "already says where the test rows come from")
    own = own_splits(raw)
    check_label_spellings([*raw.pool["label"], *(x for f in own.values() for x in f["label"])], raw.name)
    hygiene = Hygiene(labels_merged=dict(raw.labels_merged))
    pooled = spec.mode == "stratified" and own
    pool = deduplicate(pooled_rows(raw, own) if pooled else raw.pool, hygiene)
    present = sorted(set(pool["label"]), key=lambda x: raw.labels.index(x) if x in raw.labels else 10**9)
    if len(present) < 2:
        raise BenchError(f"dataset '{raw.name}' has a single class ({echoed(present[0])}); classification needs "
                         "at least two: check --label-col")
    unknown = [x for x in present if x not in raw.labels]
    if unknown:
        raise BenchError(f"dataset '{raw.name}' has labels not in its label list: {echoed(unknown[:5])}")
    rng = np.random.default_rng(seed)
    if spec.mode == "official" or test_source == "official":
        official_test, official_val = _official_extra(raw)
        if spec.mode == "official":  # a class only the test split has is named by official_rows' error
            labels = [x for x in raw.labels if x in present or x in set(official_test["label"])]
            pool = cap_rows(pool, labels, max_rows, rng)
            parts = official_rows(pool, official_val, official_test, labels, rng, raw.name)
        else:  # test rows the pool holds are not candidates: a trained-on text must not be scored
            labels = [x for x in raw.labels if x in present]
            held = set(pool["text"].map(text_key))
            fresh = ~official_test["text"].map(text_key).isin(held)
            if (~fresh).any():
                hygiene.near_duplicates_dropped["test"] = int((~fresh).sum())
            parts = per_class_rows(pool, labels, spec.sizes, rng, raw.name, official_test[fresh])
    elif spec.mode == "stratified":
        labels = [x for x in raw.labels if x in present]
        parts = stratified_rows(cap_rows(pool, labels, max_rows, rng), labels, spec.sizes, rng, raw.name)
    else:
        labels = [x for x in raw.labels if x in present]
        parts = per_class_rows(pool, labels, spec.sizes, rng, raw.name)

    index = {name: i for i, name in enumerate(labels)}

    def to_split(frames: list[pd.DataFrame]) -> Split:
        df = pd.concat(frames, ignore_index=True)
        df = df.iloc[rng.permutation(len(df))]
        return Split(df["text"].tolist(), df["label"].map(index).to_numpy(dtype=np.int64),
                     [str(i) for i in df["id"]])

    splits = {name: to_split(parts[name]) for name in ("train", "val", "test")}
    splits = drop_later_duplicates(splits, labels, hygiene)
    train = splits["train"]
    if train_size is not None:
        train = train.subset(subsample_positions(train.labels, labels, train_size, raw.name))
    how = {"mode": spec.mode, "spec": spec.text(), "seed": seed, "test_from": test_source,
           "max_rows": max_rows, "train_size": train_size}
    if spec.mode != "official":
        how["pool"] = list(own_names(own, whole=True)) if pooled else (["train"] if own else ["all"])
        left_out = [] if pooled else [n for n in own_names(own) if not (n == "test" and test_source == "official")]
        if left_out:
            how["pool_left_out"] = left_out
    return TaskData(raw.name, labels, train, splits["val"], splits["test"], raw.provenance, hygiene.notes(), how,
                    hygiene=hygiene.record(), warnings=hygiene.warnings())


def own_splits(raw: RawDataset) -> dict[str, pd.DataFrame]:
    """The dataset's own validation and test splits, where it has them (its train split is `raw.pool`)."""
    return {name: frame for name, frame in (("validation", raw.val), ("test", raw.test))
            if frame is not None and len(frame)}


def own_names(own: dict, whole: bool = False) -> list[str]:
    return (["train"] if whole else []) + list(own)


def pooled_rows(raw: RawDataset, own: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Every split of the dataset's own in one pool (train first, so a duplicate keeps its train row),
    row ids prefixed by their split where they are not already, so they stay unique."""
    frames = []
    for name, frame in (("train", raw.pool), *own.items()):
        validate_rows(frame, f"{raw.name} ({name} split)")
        ids = [i if str(i).startswith(f"{name}:") else f"{name}:{i}" for i in frame["id"]]
        frames.append(frame.assign(id=ids))
    return pd.concat(frames, ignore_index=True)


def _official_extra(raw: RawDataset) -> tuple[pd.DataFrame, pd.DataFrame | None]:
    """The dataset's own test (and validation, where it has one) split, validated and deduplicated."""
    if raw.test is None:
        raise BenchError(f"dataset '{raw.name}' has no official test split; use --split per-class:... or "
                         "stratified:..., or give a file's split column with --split-col")
    validate_rows(raw.test, f"{raw.name} (test split)")
    test = deduplicate(raw.test)
    val = None
    if raw.val is not None and len(raw.val):
        validate_rows(raw.val, f"{raw.name} (validation split)")
        val = deduplicate(raw.val)
    return test, val


def hold_out_test_rows(raw: RawDataset, split: "SplitSpec | str | Sequence[int]", seeds: Sequence[int],
                       test_source: str = "pool", max_rows: int | None = None) -> RawDataset:
    """`raw` without any row (by its near-duplicate key, hygiene.text_key, so no copy slips through)
    that the test split of one of `seeds` holds: the pool a comparison's tuning trials draw their train
    and validation rows from, so the tuning never trains or validates on a row a test run scores."""
    held: set[str] = set()
    for seed in seeds:
        held |= {text_key(t) for t in prepare(raw, split, seed, test_source, max_rows).test.texts}
    pool = raw.pool[~raw.pool["text"].astype(str).map(text_key).isin(held)].reset_index(drop=True)
    return dataclasses.replace(raw, pool=pool)
