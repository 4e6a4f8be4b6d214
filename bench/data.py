"""Prepared data: validation, deduplication and deterministic per-class splits.

A dataset source (bench/datasets/) yields a `RawDataset` (a pool of rows with string labels, and
optionally an official test split); `prepare()` turns it into a `TaskData` with train/val/test
`Split`s of integer class ids. Every check here runs before any model loads."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from bench.errors import BenchError


@dataclass
class RawDataset:
    name: str
    pool: pd.DataFrame  # columns: id, text, label (labels as strings)
    labels: list[str]  # class names, in class-id order
    test: pd.DataFrame | None = None  # the dataset's own test split, where it has one
    provenance: str = ""


@dataclass
class Split:
    texts: list[str]
    labels: np.ndarray  # int64 class ids
    ids: list[str]  # row ids in the source, recorded so a split can be rebuilt and checked

    def __len__(self) -> int:
        return len(self.texts)


@dataclass
class TaskData:
    name: str
    labels: list[str]
    train: Split
    val: Split
    test: Split
    provenance: str = ""
    notes: list[str] = field(default_factory=list)  # e.g. how many duplicates were dropped

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

    def record(self) -> dict:
        return {"name": self.name, "n_train": len(self.train), "n_val": len(self.val),
                "n_test": len(self.test), "labels": list(self.labels), "provenance": self.provenance,
                "notes": self.notes,
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


def deduplicate(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Drop repeated texts (whitespace-normalized), keeping the first: a duplicate split across
    train and test would leak the answer."""
    key = df["text"].str.split().str.join(" ")
    keep = ~key.duplicated(keep="first")
    return df[keep].reset_index(drop=True), int((~keep).sum())


def parse_per_class(value: str | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",")]
    else:
        parts = list(value)
    try:
        nums = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        nums = ()
    if len(nums) != 3 or min(nums) < 0 or nums[0] < 1 or nums[2] < 1:
        raise BenchError(f"--per-class {value!r} is not TRAIN,VAL,TEST row counts per class "
                         "(e.g. 2000,500,500; train and test at least 1)")
    return nums  # type: ignore[return-value]


def prepare(raw: RawDataset, per_class: tuple[int, int, int], seed: int,
            test_source: str = "pool") -> TaskData:
    """Deduplicate, then sample per class: n_train/n_val/n_test rows of every class, shuffled
    with `seed`. `test_source="official"` samples the test rows from the dataset's own test split."""
    validate_rows(raw.pool, raw.name)
    pool, n_dup = deduplicate(raw.pool)
    notes = [f"{n_dup} duplicate text(s) dropped before splitting"] if n_dup else []
    present = sorted(set(pool["label"]), key=lambda x: raw.labels.index(x) if x in raw.labels else 10**9)
    if len(present) < 2:
        raise BenchError(f"dataset '{raw.name}' has a single class ({present[0]!r}); classification needs "
                         "at least two: check --label-col")
    unknown = [x for x in present if x not in raw.labels]
    if unknown:
        raise BenchError(f"dataset '{raw.name}' has labels not in its label list: {unknown[:5]}")
    labels = [x for x in raw.labels if x in present]

    official = None
    if test_source == "official":
        if raw.test is None:
            raise BenchError(f"dataset '{raw.name}' has no official test split; use --test-from pool")
        validate_rows(raw.test, f"{raw.name} (test split)")
        official, _ = deduplicate(raw.test)
        # a text in both the pool and the official test split must not be trained on
        pool = pool[~pool["text"].isin(set(official["text"]))].reset_index(drop=True)
    elif test_source != "pool":
        raise BenchError(f"--test-from {test_source!r}: use 'pool' or 'official'")

    n_train, n_val, n_test = per_class
    need_pool = n_train + n_val + (n_test if official is None else 0)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[pd.DataFrame]] = {"train": [], "val": [], "test": []}
    for label in labels:
        rows = pool[pool["label"] == label]
        if len(rows) < need_pool:
            raise BenchError(f"class {label!r} of '{raw.name}' has {len(rows)} rows after deduplication; "
                             f"--per-class {n_train},{n_val},{n_test} needs {need_pool}: lower --per-class")
        rows = rows.iloc[rng.permutation(len(rows))]
        parts["train"].append(rows.iloc[:n_train])
        parts["val"].append(rows.iloc[n_train:n_train + n_val])
        if official is None:
            parts["test"].append(rows.iloc[n_train + n_val:need_pool])
        else:
            t = official[official["label"] == label]
            if len(t) < n_test:
                raise BenchError(f"class {label!r} has {len(t)} rows in the official test split of "
                                 f"'{raw.name}'; asked for {n_test}: lower the test count in --per-class")
            parts["test"].append(t.iloc[rng.permutation(len(t))[:n_test]])

    index = {name: i for i, name in enumerate(labels)}

    def to_split(frames: list[pd.DataFrame]) -> Split:
        df = pd.concat(frames, ignore_index=True)
        df = df.iloc[rng.permutation(len(df))]
        return Split(df["text"].tolist(), df["label"].map(index).to_numpy(dtype=np.int64),
                     [str(i) for i in df["id"]])

    return TaskData(raw.name, labels, to_split(parts["train"]), to_split(parts["val"]),
                    to_split(parts["test"]), raw.provenance, notes)
