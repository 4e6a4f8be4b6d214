"""Uncertainty and significance for classification results, on scipy and statsmodels.

Per run: 95% bootstrap intervals of accuracy, balanced accuracy and macro-F1 over the test rows
(`scipy.stats.bootstrap`, BCa, seeded). Across seeds: mean, std and a 95% t-interval
(`scipy.stats.t`). Between two strategies on the same test rows: McNemar's exact test
(`statsmodels...mcnemar`), a paired bootstrap interval of the difference, a paired permutation test
for metrics that are not a plain proportion (`scipy.stats.permutation_test`), a paired t-test over
seeds (`scipy.stats.ttest_rel`), and Holm's correction over all pairs (`statsmodels...multipletests`).

The metric functions below are vectorized over resamples (the last axis is the rows); the test
suite checks them against scikit-learn's."""

from __future__ import annotations

import math
import warnings
from typing import Callable, Sequence

import numpy as np

CONFIDENCE = 0.95
N_RESAMPLES = 2000
ALPHA = 0.05
METRICS = ("accuracy", "balanced_accuracy", "macro_f1")


# ---------------------------------------------------------------- metrics, vectorized over resamples

def accuracy(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    return (truth == pred).mean(axis=-1)


def balanced_accuracy(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean recall over the classes present in `truth` (as scikit-learn's, which skips absent ones)."""
    total = np.zeros(np.broadcast_shapes(truth.shape, pred.shape)[:-1])
    present = np.zeros_like(total)
    for k in range(n_classes):
        is_k = truth == k
        support = is_k.sum(axis=-1)
        hits = (is_k & (pred == k)).sum(axis=-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            total += np.where(support > 0, hits / np.maximum(support, 1), 0.0)
        present += support > 0
    return total / np.maximum(present, 1)


def macro_f1(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Mean F1 over all classes, 0 where a class is neither true nor predicted (zero_division=0)."""
    total = np.zeros(np.broadcast_shapes(truth.shape, pred.shape)[:-1])
    for k in range(n_classes):
        t, p = truth == k, pred == k
        tp = (t & p).sum(axis=-1)
        denominator = t.sum(axis=-1) + p.sum(axis=-1)  # 2tp + fp + fn
        total += np.where(denominator > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    return total / n_classes


METRIC_FUNCTIONS: dict[str, Callable[[np.ndarray, np.ndarray, int], np.ndarray]] = {
    "accuracy": accuracy, "balanced_accuracy": balanced_accuracy, "macro_f1": macro_f1}


# ---------------------------------------------------------------- one run

def bootstrap_intervals(truth: Sequence[int], pred: Sequence[int], n_classes: int, seed: int = 0,
                        n_resamples: int = N_RESAMPLES) -> dict:
    """95% BCa bootstrap intervals over the rows for every metric in METRICS; the record's `metrics.ci`."""
    truth, pred = np.asarray(truth, dtype=np.int64), np.asarray(pred, dtype=np.int64)
    out: dict = {"confidence": CONFIDENCE, "n_resamples": n_resamples, "method": "bootstrap BCa over test rows",
                 "seed": seed}
    rows = np.arange(len(truth))
    for name in METRICS:
        fn = METRIC_FUNCTIONS[name]

        def statistic(idx, axis=-1, fn=fn):
            idx = np.moveaxis(np.asarray(idx), axis, -1)
            return fn(truth[idx], pred[idx], n_classes)

        out[name] = _bca_interval(rows, statistic, seed, n_resamples)
    return out


def _bca_interval(rows: np.ndarray, statistic, seed: int, n_resamples: int) -> list[float]:
    """BCa over resampled `rows`, falling back to the percentile interval where BCa is undefined
    (every resample equal, e.g. a perfect score)."""
    from scipy.stats import bootstrap

    for method in ("BCa", "percentile"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = bootstrap((rows,), statistic, vectorized=True, n_resamples=n_resamples,
                            confidence_level=CONFIDENCE, method=method, rng=np.random.default_rng(seed))
        low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
        if math.isfinite(low) and math.isfinite(high):
            return [low, high]
    value = float(statistic(rows))
    return [value, value]


# ---------------------------------------------------------------- across seeds

def t_interval(values: Sequence[float]) -> tuple[float, float] | None:
    """95% Student-t interval of the mean over seeds; None with fewer than two values."""
    from scipy import stats

    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    if len(x) < 2:
        return None
    sem = stats.sem(x)
    if sem == 0:
        return float(x.mean()), float(x.mean())
    low, high = stats.t.interval(CONFIDENCE, df=len(x) - 1, loc=x.mean(), scale=sem)
    return float(low), float(high)


# ---------------------------------------------------------------- two strategies on the same rows

def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> dict:
    """McNemar's exact test on paired correctness: only the rows where exactly one is right count."""
    from statsmodels.stats.contingency_tables import mcnemar

    a, b = np.asarray(correct_a, bool), np.asarray(correct_b, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    table = [[int((a & b).sum()), only_a], [only_b, int((~a & ~b).sum())]]
    pvalue = 1.0 if only_a + only_b == 0 else float(mcnemar(table, exact=True).pvalue)
    return {"only_a": only_a, "only_b": only_b, "p": min(1.0, pvalue)}


def paired_difference(truth: np.ndarray, pred_a: np.ndarray, pred_b: np.ndarray, groups: np.ndarray,
                      metric: str, n_classes: int, seed: int = 0, n_resamples: int = N_RESAMPLES,
                      test: bool = True) -> dict:
    """Metric(a) - metric(b), averaged over `groups` (seeds), with a paired bootstrap interval (rows
    resampled within each seed, each row keeping both predictions) and, with `test`, a paired
    permutation test's p-value (each row's two predictions swapped at random: the null that a and b
    are exchangeable)."""
    from scipy.stats import permutation_test

    fn = METRIC_FUNCTIONS[metric]
    truth, pred_a, pred_b = (np.asarray(x, dtype=np.int64) for x in (truth, pred_a, pred_b))
    group_ids = [np.flatnonzero(groups == g) for g in np.unique(groups)]

    def difference(t, a, b):
        return _mean_difference(t, a, b, group_ids, fn, n_classes)

    result = {"difference": float(difference(truth, pred_a, pred_b)),
              "ci": _stratified_interval(group_ids, truth, pred_a, pred_b, fn, n_classes, seed, n_resamples)}
    if test:
        def statistic(a, b, axis=-1):
            return difference(truth, np.moveaxis(a, axis, -1), np.moveaxis(b, axis, -1))

        res = permutation_test((pred_a, pred_b), statistic, permutation_type="samples", vectorized=True,
                               n_resamples=n_resamples, alternative="two-sided", rng=np.random.default_rng(seed))
        result["p"] = float(res.pvalue)
    return result


def mean_difference(truth, pred_a, pred_b, groups, metric: str, n_classes: int) -> float:
    """Metric(a) - metric(b), averaged over `groups` (seeds): the observed figure, no resampling."""
    group_ids = [np.flatnonzero(groups == g) for g in np.unique(groups)]
    return float(_mean_difference(np.asarray(truth), np.asarray(pred_a), np.asarray(pred_b), group_ids,
                                  METRIC_FUNCTIONS[metric], n_classes))


def _mean_difference(t, a, b, group_ids, fn, n_classes):
    return np.mean([fn(t[..., g], a[..., g], n_classes) - fn(t[..., g], b[..., g], n_classes)
                    for g in group_ids], axis=0)


def _diff_at(idx, axis, truth, pred_a, pred_b, fn, n_classes):
    idx = np.moveaxis(np.asarray(idx), axis, -1)
    return fn(truth[idx], pred_a[idx], n_classes) - fn(truth[idx], pred_b[idx], n_classes)


def _stratified_interval(group_ids, truth, pred_a, pred_b, fn, n_classes, seed, n_resamples) -> list[float]:
    """Percentile interval of the mean per-seed difference: rows resampled within each seed (scipy's
    bootstrap distribution per seed, independent draws), the i-th draws of every seed averaged."""
    from scipy.stats import bootstrap

    draws = []
    for g in group_ids:
        res = bootstrap((g,), lambda idx, axis=-1: _diff_at(idx, axis, truth, pred_a, pred_b, fn, n_classes),
                        vectorized=True, n_resamples=n_resamples, method="percentile",
                        rng=np.random.default_rng(seed + len(draws)))
        draws.append(res.bootstrap_distribution)
    mean = np.mean(draws, axis=0)
    tail = (1 - CONFIDENCE) / 2 * 100
    return [float(np.percentile(mean, tail)), float(np.percentile(mean, 100 - tail))]


def paired_t_over_seeds(a: Sequence[float], b: Sequence[float]) -> float | None:
    """p-value of the paired t-test over per-seed figures; None with fewer than three seeds (or no spread)."""
    from scipy.stats import ttest_rel

    if len(a) < 3:
        return None
    d = np.asarray(a, float) - np.asarray(b, float)
    if np.allclose(d, d[0]):
        return None
    return float(ttest_rel(a, b).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values (family-wise error over all pairs)."""
    from statsmodels.stats.multitest import multipletests

    if not pvalues:
        return []
    return [float(p) for p in multipletests(list(pvalues), alpha=ALPHA, method="holm")[1]]
