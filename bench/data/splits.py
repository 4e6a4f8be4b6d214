"""How a dataset's rows become train/validation/test splits: three modes behind one flag.

    --split per-class:60,20,40     equal rows of every class (the embedded default; --per-class is its alias)
    --split stratified:0.8,0.1,0.1 fractions of all rows, every class keeps its share (--max-rows caps the pool)
    --split official               the dataset's own splits; a missing validation split is carved from train

and, on top of any mode, `--train-sizes` draws smaller training sets (nested: the 8-row set is part of the
32-row one) while validation and test stay the same rows. Everything is deterministic for a seed. The
functions here work on (id, text, label) frames and know nothing of models."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from bench.core.errors import BenchError, echoed

MODES = ("per-class", "stratified", "official")
SPLITS = ("train", "val", "test")
CARVED_VAL_FRACTION = 0.1  # of the official train split, where a dataset has no validation split


@dataclass(frozen=True)
class SplitSpec:
    mode: str  # one of MODES
    sizes: tuple = ()  # per-class: three row counts; stratified: three fractions; official: ()

    def text(self) -> str:
        if self.mode == "official":
            return "official"
        return f"{self.mode}:" + ",".join(f"{s:g}" if isinstance(s, float) else str(s) for s in self.sizes)


def parse_per_class(value: str | Sequence[int]) -> tuple[int, int, int]:
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    try:
        nums = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        nums = ()
    if len(nums) != 3 or min(nums) < 0 or nums[0] < 1 or nums[2] < 1:
        raise BenchError(f"--per-class {echoed(value)} is not TRAIN,VAL,TEST row counts per class "
                         "(e.g. 2000,500,500; train and test at least 1)")
    return nums  # type: ignore[return-value]


def parse_split(value: str | SplitSpec | Sequence[int]) -> SplitSpec:
    """`per-class:60,20,40`, `stratified:0.8,0.1,0.1` or `official`; a bare TRAIN,VAL,TEST (or a
    sequence of three ints) is per-class, as `--per-class` always took it."""
    if isinstance(value, SplitSpec):
        return value
    if not isinstance(value, str):
        return SplitSpec("per-class", parse_per_class(value))
    mode, sep, rest = value.strip().partition(":")
    if not sep and mode not in MODES:  # "60,20,40": the --per-class spelling
        return SplitSpec("per-class", parse_per_class(value))
    if mode == "per-class":
        return SplitSpec("per-class", parse_per_class(rest))
    if mode == "official":
        if rest.strip():
            raise BenchError(f"--split {echoed(value)}: 'official' takes no sizes (the dataset's own splits are used)")
        return SplitSpec("official")
    if mode == "stratified":
        return SplitSpec("stratified", parse_fractions(rest, value))
    raise BenchError(f"--split {echoed(value)}: use per-class:TRAIN,VAL,TEST (rows per class), "
                     "stratified:0.8,0.1,0.1 (fractions of all rows) or official")


def parse_fractions(text: str, whole: str) -> tuple[float, float, float]:
    try:
        nums = tuple(float(p) for p in text.split(","))
    except ValueError:
        nums = ()
    ok = (len(nums) == 3 and all(math.isfinite(x) and 0 <= x <= 1 for x in nums) and nums[0] > 0
          and nums[2] > 0 and sum(nums) <= 1 + 1e-9)
    if not ok:
        raise BenchError(f"--split {echoed(whole)}: stratified takes TRAIN,VAL,TEST fractions of all rows, each in "
                         "[0, 1], train and test above 0, summing to at most 1 (e.g. stratified:0.8,0.1,0.1)")
    return nums  # type: ignore[return-value]


def parse_train_sizes(value: str | Sequence | None) -> list[int | float] | None:
    """`8,16,32` (rows per class) or `0.1,0.5,1` (fractions of the train split); None: the full split."""
    if value is None or value == "" or value == []:
        return None
    parts = [p.strip() for p in value.split(",") if p.strip()] if isinstance(value, str) else list(value)
    values = []
    for p in parts:
        try:
            values.append(float(p))
        except (TypeError, ValueError):
            values.append(math.nan)
    counts = any(x > 1 for x in values)  # any size above 1: all are rows per class, else all fractions
    if not values or any(not math.isfinite(x) or x <= 0 or (counts and x != int(x)) for x in values):
        raise BenchError(f"--train-sizes {echoed(value)}: give rows per class (8,16,32) or fractions of the train "
                         "split in (0, 1] (0.1,0.5,1)")
    sizes: list[int | float] = [int(x) for x in values] if counts else values
    if len(set(sizes)) != len(sizes):
        raise BenchError(f"--train-sizes {echoed(value)}: a size is repeated")
    return sorted(sizes)


# ---------------------------------------------------------------- the three modes

def per_class_rows(pool: pd.DataFrame, labels: list[str], counts: tuple[int, int, int], rng: np.random.Generator,
                   name: str, official_test: pd.DataFrame | None = None) -> dict[str, list[pd.DataFrame]]:
    n_train, n_val, n_test = counts
    need = n_train + n_val + (n_test if official_test is None else 0)
    parts: dict[str, list[pd.DataFrame]] = {s: [] for s in SPLITS}
    for label in labels:
        rows = pool[pool["label"] == label]
        if len(rows) < need:
            raise BenchError(f"class {echoed(label)} of '{name}' has {len(rows)} rows after deduplication; "
                             f"--per-class {n_train},{n_val},{n_test} needs {need}: lower --per-class, or use "
                             "--split stratified:0.8,0.1,0.1 to keep every row of every class")
        rows = rows.iloc[rng.permutation(len(rows))]
        parts["train"].append(rows.iloc[:n_train])
        parts["val"].append(rows.iloc[n_train:n_train + n_val])
        if official_test is None:
            parts["test"].append(rows.iloc[n_train + n_val:need])
        else:
            t = official_test[official_test["label"] == label]
            if len(t) < n_test:
                raise BenchError(f"class {echoed(label)} has {len(t)} rows in the official test split of "
                                 f"'{name}'; asked for {n_test}: lower the test count in --per-class")
            parts["test"].append(t.iloc[rng.permutation(len(t))[:n_test]])
    return parts


def allocate(n: int, fractions: Sequence[float]) -> list[int]:
    """Rows of one class per split: floor of n x fraction, the rows left over going to the largest
    remainders (so counts sum to round(n x sum(fractions))), and at least one in every split whose
    fraction is above zero."""
    want = [n * f for f in fractions]
    counts = [math.floor(w) for w in want]
    target = min(n, round(n * sum(fractions)))
    for i in sorted(range(len(want)), key=lambda i: counts[i] - want[i])[: max(0, target - sum(counts))]:
        counts[i] += 1
    for i, f in enumerate(fractions):  # a split with a share gets a row of every class
        if f > 0 and counts[i] == 0:
            donor = max(range(len(counts)), key=lambda j: counts[j])
            counts[donor] -= 1
            counts[i] += 1
    return counts


def stratified_rows(pool: pd.DataFrame, labels: list[str], fractions: tuple[float, float, float],
                    rng: np.random.Generator, name: str) -> dict[str, list[pd.DataFrame]]:
    need = sum(1 for f in fractions if f > 0)
    parts: dict[str, list[pd.DataFrame]] = {s: [] for s in SPLITS}
    spec = SplitSpec("stratified", fractions).text()
    for label in labels:
        rows = pool[pool["label"] == label]
        if len(rows) < need:
            raise BenchError(f"class {echoed(label)} of '{name}' has {len(rows)} row(s); --split {spec} needs at least "
                             f"{need} (one in each split): drop or merge that class in the data, or use "
                             "--split official with a split column that places its rows")
        rows = rows.iloc[rng.permutation(len(rows))]
        n_train, n_val, n_test = allocate(len(rows), fractions)
        parts["train"].append(rows.iloc[:n_train])
        parts["val"].append(rows.iloc[n_train:n_train + n_val])
        parts["test"].append(rows.iloc[n_train + n_val:n_train + n_val + n_test])
    return parts


def official_rows(train: pd.DataFrame, val: pd.DataFrame | None, test: pd.DataFrame, labels: list[str],
                  rng: np.random.Generator, name: str) -> dict[str, list[pd.DataFrame]]:
    """The dataset's own splits; without a validation split, CARVED_VAL_FRACTION of every class of
    train becomes validation (none of a class that has a single train row)."""
    parts: dict[str, list[pd.DataFrame]] = {s: [] for s in SPLITS}
    for label in labels:
        rows = train[train["label"] == label]
        if len(rows) == 0:
            raise BenchError(f"class {echoed(label)} of '{name}' has no rows in the official train split: a model "
                             "cannot learn it; drop that class, or use --split stratified:0.8,0.1,0.1")
        rows = rows.iloc[rng.permutation(len(rows))]
        if val is None:
            n_val = min(len(rows) - 1, max(1, round(len(rows) * CARVED_VAL_FRACTION)))
            parts["val"].append(rows.iloc[:n_val])
            rows = rows.iloc[n_val:]
        parts["train"].append(rows)
        if val is not None:
            parts["val"].append(val[val["label"] == label])
        parts["test"].append(test[test["label"] == label])
    return parts


def cap_rows(pool: pd.DataFrame, labels: list[str], max_rows: int | None, rng: np.random.Generator) -> pd.DataFrame:
    """At most `max_rows` rows, every class keeping its share (and at least one row)."""
    if not max_rows or len(pool) <= max_rows:
        return pool
    keep = []
    counts = pool["label"].value_counts()
    total = len(pool)
    for label in labels:
        rows = pool[pool["label"] == label]
        n = max(1, round(counts.get(label, 0) * max_rows / total))
        keep.append(rows.iloc[np.sort(rng.permutation(len(rows))[:n])])
    return pd.concat(keep).sort_index()


def subsample_positions(label_ids: np.ndarray, labels: list[str], size: int | float, name: str) -> np.ndarray:
    """Positions of the first `size` rows of every class (or that fraction of them) in the train
    split's own shuffled order: a smaller size is always a subset of a larger one, so a curve
    compares like with like."""
    keep = []
    for k, label in enumerate(labels):
        rows = np.flatnonzero(label_ids == k)
        if len(rows) == 0:
            continue
        n = size if isinstance(size, int) else max(1, round(len(rows) * size))
        if n > len(rows):
            raise BenchError(f"--train-sizes {size}: class {echoed(label)} of '{name}' has {len(rows)} training rows; "
                             f"give sizes up to {len(rows)}, or a larger train split")
        keep.append(rows[:n])
    return np.sort(np.concatenate(keep))
