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
              "ci": _stratified_interval(group_ids, truth, pred_a, pred_b, metric, n_classes, seed, n_resamples)}
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


def _stratified_interval(group_ids, truth, pred_a, pred_b, metric, n_classes, seed, n_resamples) -> list[float]:
    """Percentile interval of the mean per-seed difference: rows resampled within each seed (the
    draws scipy.stats.bootstrap makes with that seed, independent per seed), the i-th draws of every
    seed averaged."""
    draws = []
    for g in group_ids:
        counts = resample_counts(seed + len(draws), len(g), n_resamples)
        draws.append(metric_draws(counts, truth[g], pred_a[g], metric, n_classes)
                     - metric_draws(counts, truth[g], pred_b[g], metric, n_classes))
    mean = np.mean(draws, axis=0)
    tail = (1 - CONFIDENCE) / 2 * 100
    return [float(np.percentile(mean, tail)), float(np.percentile(mean, 100 - tail))]


# ---------------------------------------------------------------- bootstrap draws as counts

COUNTS_CACHE_BYTES = 256 * 2**20  # the draws kept for reuse; past this the oldest go


class _CountsCache:
    """Resample counts by (seed, rows, resamples), least recently used dropped past a byte budget:
    every pair of strategies on one seed's test rows resamples the same rows with the same seed, so
    the draws (the bulk of a bootstrap's work) are made once per seed, not once per pair."""

    def __init__(self, budget: int):
        from collections import OrderedDict

        self.budget, self.size, self.items = budget, 0, OrderedDict()

    def get(self, key, make):
        if key in self.items:
            self.items.move_to_end(key)
            return self.items[key]
        value = make()
        self.items[key] = value
        self.size += value.nbytes
        while self.size > self.budget and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.size -= old.nbytes
        return value


_COUNTS = _CountsCache(COUNTS_CACHE_BYTES)


def resample_counts(seed: int, n: int, n_resamples: int = N_RESAMPLES) -> np.ndarray:
    """(n_resamples, n): how often each row is drawn in each resample. The draws are those of
    scipy.stats.bootstrap with `np.random.default_rng(seed)` (rows with replacement, all resamples
    in one batch), so every figure equals what scipy's bootstrap gives; read-only, shared."""
    def make() -> np.ndarray:
        idx = np.random.default_rng(seed).integers(0, n, size=(n_resamples, n), dtype=np.int64)
        flat = (idx + (np.arange(n_resamples, dtype=np.int64) * n)[:, None]).ravel()
        counts = np.bincount(flat, minlength=n_resamples * n).reshape(n_resamples, n)
        counts = counts.astype(np.uint8 if counts.max(initial=0) < 256 else np.uint32)
        counts.flags.writeable = False
        return counts

    return _COUNTS.get((int(seed), int(n), int(n_resamples)), make)


def metric_draws(counts: np.ndarray, truth: np.ndarray, pred: np.ndarray, metric: str,
                 n_classes: int) -> np.ndarray:
    """The metric on every resample that `counts` describes, as the functions above compute it on
    the resampled rows: each figure is a sum of per-row indicators, so a count-weighted sum gives it."""
    truth, pred = np.asarray(truth), np.asarray(pred)
    weights = counts.astype(np.float64)
    if metric == "accuracy":
        return weights @ (truth == pred).astype(np.float64) / len(truth)
    classes = np.arange(n_classes)
    is_true = truth[:, None] == classes  # (rows, classes)
    is_pred = pred[:, None] == classes
    hits = weights @ (is_true & is_pred).astype(np.float64)  # (resamples, classes)
    support = weights @ is_true.astype(np.float64)
    if metric == "balanced_accuracy":
        recall = np.where(support > 0, hits / np.maximum(support, 1), 0.0)
        return recall.sum(axis=1) / np.maximum((support > 0).sum(axis=1), 1)
    if metric == "macro_f1":
        denominator = support + weights @ is_pred.astype(np.float64)
        return np.where(denominator > 0, 2 * hits / np.maximum(denominator, 1), 0.0).sum(axis=1) / n_classes
    raise ValueError(f"unknown metric {metric!r}")


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


# ---------------------------------------------------------------- which strategy is best

def p_best(truth: Sequence[np.ndarray], preds: dict[str, Sequence[np.ndarray]], metric: str, n_classes: int,
           n_resamples: int = N_RESAMPLES, seed: int = 0) -> dict[str, float]:
    """The probability that each strategy is the best, by a two-stage bootstrap: the seeds drawn
    with replacement, then within each drawn seed its test rows with replacement (the same rows for
    every strategy: they are paired); each resample's best is the highest mean of the metric over
    its drawn seeds, a tie shared. `truth[i]` and `preds[name][i]` are seed i's rows.

    A seed's row resamples are the draws `resample_counts(seed index, rows)` makes (those of the
    significance tests, reused); each drawn seed of each resample takes one of them at random."""
    names = list(preds)
    n_seeds = len(truth)
    if not names or n_seeds == 0 or any(len(preds[k]) != n_seeds for k in names):
        raise ValueError("p_best needs every strategy's predictions on every seed")
    # (strategies, seeds, resamples): the metric on each row resample of each seed
    draws = np.stack([np.stack([metric_draws(resample_counts(i, len(truth[i]), n_resamples), truth[i], preds[k][i],
                                             metric, n_classes) for i in range(n_seeds)]) for k in names])
    rng = np.random.default_rng(seed)
    seed_idx = rng.integers(0, n_seeds, size=(n_resamples, n_seeds))
    row_idx = rng.integers(0, n_resamples, size=(n_resamples, n_seeds))
    values = draws[:, seed_idx, row_idx].mean(axis=2)  # (strategies, resamples)
    best = values.max(axis=0)
    is_best = np.isclose(values, best, rtol=0, atol=1e-12)
    share = is_best / is_best.sum(axis=0)
    return {k: float(v) for k, v in zip(names, share.mean(axis=1))}
