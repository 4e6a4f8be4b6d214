"""The statistics behind intervals and verdicts, checked against published or hand-computed values
and against scikit-learn."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from bench.core import stats


@pytest.mark.parametrize("n_classes", [2, 5])
def test_vectorized_metrics_equal_scikit_learn(n_classes):
    rng = np.random.default_rng(n_classes)
    truth = rng.integers(0, n_classes, (40, 120))
    pred = np.where(rng.random((40, 120)) < 0.6, truth, rng.integers(0, n_classes, (40, 120)))
    refs = {"accuracy": accuracy_score, "balanced_accuracy": balanced_accuracy_score,
            "macro_f1": lambda t, p: f1_score(t, p, labels=list(range(n_classes)), average="macro", zero_division=0)}
    for name, ref in refs.items():
        ours = stats.METRIC_FUNCTIONS[name](truth, pred, n_classes)
        assert np.allclose(ours, [ref(t, p) for t, p in zip(truth, pred)]), name


def test_mcnemar_exact_matches_the_binomial_computed_by_hand():
    # 6 rows right for a only, 16 for b only: p = 2 * P(X <= 6 | n=22, 1/2) = 2 * 110056 / 2**22
    a = np.array([1] * 6 + [0] * 16 + [1] * 50 + [0] * 9, bool)
    b = np.array([0] * 6 + [1] * 16 + [1] * 50 + [0] * 9, bool)
    result = stats.mcnemar_exact(a, b)
    assert (result["only_a"], result["only_b"]) == (6, 16)
    assert result["p"] == pytest.approx(2 * 110056 / 2**22, rel=1e-9)  # 0.05248
    assert stats.mcnemar_exact(a, a)["p"] == 1.0  # no discordant row: nothing to tell apart


def test_holm_adjustment_matches_the_textbook_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> monotone 0.06
    assert stats.holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_t_interval_over_seeds():
    low, high = stats.t_interval([0.90, 0.92, 0.94])
    half = 4.302652729911275 * 0.02 / math.sqrt(3)  # t(0.975, df=2) x s / sqrt(n)
    assert (low, high) == pytest.approx((0.92 - half, 0.92 + half))
    assert stats.t_interval([0.9]) is None
    assert stats.t_interval([0.9, 0.9]) == (0.9, 0.9)


def test_bootstrap_interval_of_accuracy_agrees_with_the_normal_approximation():
    truth = np.array([0] * 100 + [1] * 100)
    pred = truth.copy()
    pred[::10] = 1 - pred[::10]  # 180 of 200 right
    ci = stats.bootstrap_intervals(truth, pred, 2, seed=0)
    half = 1.96 * math.sqrt(0.9 * 0.1 / 200)
    assert ci["n_resamples"] >= 1000 and ci["confidence"] == 0.95
    assert ci["accuracy"][0] == pytest.approx(0.9 - half, abs=0.012)
    assert ci["accuracy"][1] == pytest.approx(0.9 + half, abs=0.012)
    assert ci == stats.bootstrap_intervals(truth, pred, 2, seed=0)  # seeded: the same interval again
    perfect = stats.bootstrap_intervals(truth, truth, 2, seed=0)
    assert perfect["accuracy"] == [1.0, 1.0]  # degenerate: every resample is 1.0


def test_paired_difference_tells_real_from_chance():
    rng = np.random.default_rng(1)
    truth = rng.integers(0, 3, 300)
    good = np.where(rng.random(300) < 0.9, truth, (truth + 1) % 3)
    bad = np.where(rng.random(300) < 0.6, truth, (truth + 1) % 3)
    groups = np.repeat([0, 1], 150)
    real = stats.paired_difference(truth, good, bad, groups, "balanced_accuracy", 3, seed=0)
    assert real["difference"] > 0.15 and real["ci"][0] > 0 and real["p"] < 0.001
    noise = np.where(rng.random(300) < 0.9, truth, (truth + 1) % 3)
    same = stats.paired_difference(truth, good, noise, groups, "accuracy", 3, seed=0)
    assert same["ci"][0] < 0 < same["ci"][1] and same["p"] > 0.05


def test_paired_t_needs_three_seeds():
    assert stats.paired_t_over_seeds([0.9, 0.91], [0.8, 0.82]) is None
    assert stats.paired_t_over_seeds([0.90, 0.91, 0.93], [0.80, 0.82, 0.81]) < 0.05


@pytest.mark.parametrize("metric", stats.METRICS)
def test_bootstrap_draws_as_counts_equal_scipys_bootstrap(metric):
    """The shared count draws give exactly the bootstrap distribution scipy computes on resampled rows."""
    from scipy.stats import bootstrap

    rng = np.random.default_rng(4)
    truth, pred = rng.integers(0, 4, 90), rng.integers(0, 4, 90)
    fn = stats.METRIC_FUNCTIONS[metric]
    rows = np.arange(90)
    res = bootstrap((rows,), lambda idx, axis=-1: fn(truth[np.moveaxis(idx, axis, -1)], pred[np.moveaxis(idx, axis, -1)], 4),
                    vectorized=True, n_resamples=500, method="percentile", rng=np.random.default_rng(7))
    ours = stats.metric_draws(stats.resample_counts(7, 90, 500), truth, pred, metric, 4)
    np.testing.assert_allclose(ours, res.bootstrap_distribution, rtol=0, atol=1e-12)
    assert stats.resample_counts(7, 90, 500) is stats.resample_counts(7, 90, 500)  # made once, shared
