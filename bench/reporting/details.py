"""Per-group details for the report: runs grouped as the summary groups them, mean training curves,
mean per-class F1, summed confusion matrices, and the environment values the runs were measured in."""

from __future__ import annotations

import json
import math
from collections import Counter
from typing import Iterable

import numpy as np
import pandas as pd

from bench.core.record import Record
from bench.reporting.summary import CURVE_KEYS, ENV_KEYS, GROUP_KEYS, dig, number, summary_mask


def group_runs(runs: pd.DataFrame) -> list[tuple[tuple, pd.DataFrame]]:
    """(group key, its counted runs) in summary order."""
    counted = runs[summary_mask(runs)]
    return [(key, group) for key, group in counted.groupby(GROUP_KEYS, sort=True)]


def mean_history(histories: Iterable[list]) -> pd.DataFrame:
    """Per-epoch mean over seeds of train_loss, val_loss, val_accuracy (NaN where none reported)."""
    rows = []
    for history in histories:
        for entry in history or []:
            epoch = number(dig(entry, "epoch"))
            if not math.isnan(epoch):
                rows.append({"epoch": epoch, **{k: number(dig(entry, k)) for k in CURVE_KEYS}})
    if not rows:
        return pd.DataFrame(columns=["epoch"] + CURVE_KEYS)
    return pd.DataFrame(rows).groupby("epoch", as_index=False).mean().sort_values("epoch")


def mean_per_class_f1(metrics_blocks: Iterable[dict], labels: list[str]) -> list[float]:
    """Mean F1 per label over seeds, in `labels` order (NaN for a label no record reports)."""
    values: dict[str, list[float]] = {label: [] for label in labels}
    for block in metrics_blocks:
        per_class = dig(block, "per_class")
        for label in labels:
            f1 = number(dig(per_class, label, "f1"))
            if 0 <= f1 <= 1:  # NaN, and any impossible F1, left out
                values[label].append(f1)
    return [float(np.mean(v)) if v else math.nan for v in values.values()]


def confusion_total(metrics_blocks: Iterable[dict], n_labels: int) -> list[list[int]] | None:
    """Confusion matrices summed over seeds; matrices of the wrong shape are left out."""
    total = None
    for block in metrics_blocks:
        try:
            matrix = np.asarray(dig(block, "confusion"), dtype=float)
        except (TypeError, ValueError, OverflowError):
            continue
        if matrix.shape != (n_labels, n_labels) or not np.isfinite(matrix).all() or (matrix < 0).any() \
                or (matrix > 2**53).any():  # counts of rows, or nothing
            continue
        total = matrix if total is None else total + matrix
    return None if total is None else total.astype(int).tolist()


def environment_values(records: Iterable[Record]) -> list[tuple[str, list[tuple[str, int]]]]:
    """(env key, [(distinct value, number of runs)]) with the well-known keys first."""
    counts: dict[str, Counter] = {}
    for rec in records:
        env = rec.env
        if not isinstance(env, dict):
            continue
        for key, value in env.items():
            text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
            counts.setdefault(str(key), Counter())[text] += 1
    order = [k for k in ENV_KEYS if k in counts] + sorted(k for k in counts if k not in ENV_KEYS)
    return [(key, sorted(counts[key].items(), key=lambda kv: (-kv[1], kv[0]))) for key in order]
